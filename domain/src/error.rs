//! What a rule answers when it refuses. Each variant has one stable wire code
//! (`openapi::problems::ErrorCode::of`).

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
    /// WhatsApp takes free-form replies only within 24 hours of the customer's last message.
    #[error(
        "the customer last wrote more than 24 hours ago; WhatsApp takes no free-form reply now"
    )]
    ChannelWindowClosed,
    #[error("this attachment is not allowed on this channel")]
    AttachmentNotAllowedOnChannel,
    #[error("this kind of file cannot be attached, or it is not what it claims to be")]
    UnsupportedAttachment,
}

impl DomainError {
    pub fn invalid(field: &str, message: &str) -> Self {
        DomainError::Validation(vec![FieldError::new(field, message)])
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
