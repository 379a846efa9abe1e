//! What a rule answers when it refuses. Each variant has one stable code (API.md).

/// A field that failed validation, named as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("you are not allowed to do this")]
    Forbidden,
    /// Unknown, in another organization, or not visible to the caller: never leak existence.
    #[error("not found")]
    NotFound,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("assignment is turned off for this inbox")]
    AssignmentDisabled,
    #[error("the assignee is not a member of this inbox")]
    AssigneeNotMember,
    #[error("the assignee is not a member of this team")]
    AssigneeNotInTeam,
    #[error("the conversation is closed")]
    ConversationClosed,
    /// Lost a race: the conversation changed between what the caller saw and their change
    /// (a newer message arrived, or a colleague took it a moment earlier). 409.
    #[error("the conversation changed a moment ago; reload it and try again")]
    ConversationChanged,
    #[error("moving conversations is turned off for this inbox")]
    MoveDisabled,
    #[error("the contact has opted out of text messages")]
    ContactOptedOut,
    #[error("this channel cannot start conversations")]
    ChannelCannotInitiate,
    #[error("this attachment is not allowed on this channel")]
    AttachmentNotAllowedOnChannel,
    #[error("this kind of file cannot be attached, or it is not what it claims to be")]
    UnsupportedAttachment,
}

impl DomainError {
    pub fn invalid(field: &str, message: &str) -> Self {
        DomainError::Validation(vec![FieldError::new(field, message)])
    }

    /// The stable, machine-readable code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Forbidden => "forbidden",
            DomainError::NotFound => "not_found",
            DomainError::Validation(_) => "validation_failed",
            DomainError::AssignmentDisabled => "assignment_disabled",
            DomainError::AssigneeNotMember => "assignee_not_member",
            DomainError::AssigneeNotInTeam => "assignee_not_in_team",
            DomainError::ConversationClosed => "conversation_closed",
            DomainError::ConversationChanged => "conversation_changed",
            DomainError::MoveDisabled => "move_disabled",
            DomainError::ContactOptedOut => "contact_opted_out",
            DomainError::ChannelCannotInitiate => "channel_cannot_initiate",
            DomainError::AttachmentNotAllowedOnChannel => "attachment_not_allowed_on_channel",
            DomainError::UnsupportedAttachment => "unsupported_attachment",
        }
    }
}

/// Collects field errors so that one response names every bad field at once.
#[derive(Debug, Default)]
pub struct Validator(Vec<FieldError>);

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(error);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.0))
        }
    }
}

impl From<FieldError> for DomainError {
    fn from(error: FieldError) -> Self {
        DomainError::Validation(vec![error])
    }
}
