//! Black-box tests of the Switchboard API: one test binary (fast to link), one module per
//! area. Each test runs on SQLite and on PostgreSQL (skipped, and listed, when PostgreSQL is
//! unreachable outside CI).

#[allow(dead_code)] // helpers are shared by modules that each use a part
mod support;

mod admin;
mod admin_channels;
mod admin_inboxes;
mod attachments;
mod auth;
mod authz_matrix;
mod chats;
mod compression;
mod contacts;
mod conversation_rules;
mod conversations;
mod counts;
mod delivery;
mod event_cursors;
#[allow(dead_code)] // a stand-in for the Meta Graph API, for modules that each use a part
mod fake_meta;
#[allow(dead_code)] // a stand-in for the Twilio REST API, for modules that each use a part
mod fake_twilio;
mod fault_drills;
#[allow(dead_code)] // scenario builders shared by modules that each use a part
mod fixtures;
mod list_plans;
mod migrations;
mod object_storage;
mod outbound_files;
mod providers;
mod proxy;
mod races;
mod realtime;
mod realtime_bounds;
mod realtime_scale;
mod routing;
mod search_index;
mod seed;
mod smoke;
mod spec;
mod sqlite_writers;
mod surveys;
mod tags;
mod visibility_property;
mod webchat;
