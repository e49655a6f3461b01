//! Creating users (the CLI bootstrap now; registration and the admin API later).

use crate::App;
use crate::error::{FieldProblem, ServiceError};
use crate::services::passwords::validate_new_password;
use rampart_domain::{Action, Actor, Email, NewUser, Outcome, Resource, RoleName, User, UserId};

/// Longest display name accepted.
pub const MAX_NAME_CHARS: usize = 200;

#[derive(Debug)]
pub struct CreateUser {
    pub email: String,
    pub password: rampart_domain::Secret<String>,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

/// Validates every field (reporting all problems at once), hashes the password off the
/// runtime, and stores the user with a `user.created` event in one transaction.
pub async fn create_user(
    state: &App,
    input: CreateUser,
    actor: Actor,
    via: &'static str,
) -> Result<User, ServiceError> {
    let mut errors = Vec::new();
    let email =
        Email::parse(&input.email).map_err(|e| errors.push(FieldProblem::new("email", e.code(), e.to_string()))).ok();
    let name = input.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let email_words = email.as_ref().map_or(input.email.as_str(), Email::as_str);
    let password =
        match validate_new_password(state, input.password.expose(), Some(email_words), name.as_deref(), "password")
            .await
        {
            Ok(password) => Some(password),
            Err(ServiceError::Validation(problems)) => {
                errors.extend(problems);
                None
            }
            Err(e) => return Err(e),
        };
    if let Some(n) = &name
        && (n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control))
    {
        errors.push(FieldProblem::new(
            "name",
            "name_invalid",
            format!("at most {MAX_NAME_CHARS} characters, no control characters"),
        ));
    }
    let mut roles = Vec::new();
    for r in if input.roles.is_empty() { vec![RoleName::USER.to_string()] } else { input.roles } {
        match RoleName::parse(&r) {
            Ok(role) if !roles.contains(&role) => roles.push(role),
            Ok(_) => {}
            Err(e) => errors.push(FieldProblem::new("roles", "role_invalid", e.to_string())),
        }
    }
    let (Some(email), Some(password), true) = (email, password, errors.is_empty()) else {
        return Err(ServiceError::Validation(errors));
    };

    let password_hash = state.hashing.hash(password).await?;
    let id = UserId(uuid::Uuid::now_v7());
    let new = NewUser { id, email, name, password_hash, roles, created_at: state.clock.now() };
    let event = state
        .events
        .event(Action::UserCreated, Outcome::Success)
        .actor(actor)
        .resource(Resource::new("user", id))
        .details(
            serde_json::json!({ "via": via, "roles": new.roles.iter().map(RoleName::as_str).collect::<Vec<_>>() }),
        );
    let user = state.store.create_user(&new, &event).await?;
    state.events.observed(&event);
    Ok(user)
}
