//! Handlers, one module per area. Each is registered through utoipa-actix-web, so the
//! OpenAPI document is built from the very registrations that serve traffic.

use utoipa_actix_web::service_config::ServiceConfig;

pub mod attachments;
pub mod auth;
pub mod canned;
pub mod channel_calls;
pub mod channels;
pub mod chats;
pub mod contacts;
pub mod conversations;
pub mod inboxes;
pub mod me;
pub mod ops;
pub mod reactions;
pub mod surveys;
pub mod tags;
pub mod teams;
pub mod users;
pub mod webchat;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(me::get_me)
        .service(me::set_queue_login)
        .service(me::set_status)
        .service(users::list_users)
        .service(users::create_user)
        .service(users::get_user)
        .service(users::update_user)
        .service(teams::list_teams)
        .service(teams::create_team)
        .service(teams::get_team)
        .service(teams::update_team)
        .service(teams::delete_team)
        .service(teams::add_team_member)
        .service(teams::remove_team_member)
        .service(inboxes::list_inboxes)
        .service(inboxes::create_inbox)
        .service(inboxes::get_inbox)
        .service(inboxes::update_inbox)
        .service(inboxes::list_inbox_members)
        .service(inboxes::add_inbox_member)
        .service(inboxes::remove_inbox_member)
        .service(channels::list_channels)
        .service(channels::create_channel)
        .service(canned::list_canned_responses)
        .service(canned::create_canned_response)
        .service(canned::update_canned_response)
        .service(canned::delete_canned_response)
        .service(tags::list_tags)
        .service(tags::create_tag)
        .service(contacts::list_contacts)
        .service(contacts::create_contact)
        .service(contacts::export_contacts)
        .service(contacts::import_contacts)
        .service(contacts::get_contact)
        .service(contacts::update_contact)
        .service(contacts::delete_contact)
        .service(contacts::favorite_contact)
        .service(contacts::unfavorite_contact)
        .service(contacts::set_contact_opt_out)
        .service(contacts::list_contact_conversations)
        .service(contacts::list_contact_activity)
        .service(contacts::merge_contacts)
        .service(tags::update_tag)
        .service(tags::delete_tag)
        .service(conversations::list_conversations)
        .service(conversations::count_conversations)
        .service(conversations::create_conversation)
        .service(conversations::bulk_conversations)
        .service(conversations::get_conversation)
        .service(conversations::assign_conversation)
        .service(conversations::close_conversation)
        .service(conversations::move_conversation)
        .service(conversations::read_conversation)
        .service(conversations::unread_conversation)
        .service(conversations::pin_conversation)
        .service(conversations::unpin_conversation)
        .service(conversations::tag_conversation)
        .service(conversations::untag_conversation)
        .service(conversations::link_conversation_contact)
        .service(conversations::list_messages)
        .service(conversations::send_message)
        .service(conversations::list_conversation_activity)
        .service(reactions::add_reaction)
        .service(reactions::remove_reaction)
        .service(attachments::upload_attachment)
        .service(attachments::download_attachment)
        .service(attachments::download_linked_attachment)
        .service(surveys::send_survey)
        .service(surveys::get_public_survey)
        .service(surveys::answer_public_survey)
        .service(chats::list_chats)
        .service(chats::create_chat)
        .service(chats::get_chat)
        .service(chats::list_chat_messages)
        .service(chats::send_chat_message)
        .service(chats::read_chat)
        .service(surveys::get_survey_summary)
        .service(crate::live::connect_websocket)
        .service(crate::live::list_events)
        .service(crate::live::get_presence)
        .service(channel_calls::receive_inbound_message)
        .service(channel_calls::receive_delivery_status)
        .service(channel_calls::receive_twilio_message)
        .service(channel_calls::receive_twilio_status)
        .service(channel_calls::verify_meta_webhook)
        .service(channel_calls::receive_meta_event)
        .service(webchat::start_visitor_session)
        .service(webchat::list_visitor_messages)
        .service(webchat::send_visitor_message)
        .service(webchat::upload_visitor_attachment)
        .service(webchat::connect_visitor_websocket);
}
