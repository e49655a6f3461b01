//! Rampart's domain: the rules and types of the security features, free of I/O.
//!
//! Nothing here reads a clock, draws randomness from a global, touches a file, a socket or a
//! database: callers pass the time ([`clock::Clock`]) and a CSPRNG in. That keeps every rule
//! testable with fixed inputs (RFC vectors, frozen clocks) and lets the storage and HTTP layers
//! stay thin.

pub mod alert;
pub mod apikey;
pub mod audit;
pub mod clock;
pub mod crypto;
pub mod device;
pub mod email;
pub mod event;
pub mod export;
pub mod federation;
pub mod gateway;
pub mod iprule;
pub mod mfa;
pub mod notice;
pub mod opaque;
pub mod otp;
pub mod password;
pub mod permission;
pub mod personal;
pub mod ratelimit;
pub mod secret;
pub mod session;
pub mod throttle;
pub mod tokens;
pub mod transit;
pub mod user;
pub mod webhook;

pub use clock::{Clock, SystemClock};
pub use crypto::{KeyRing, MasterKey};
pub use device::{Device, DeviceKind};
pub use email::{Email, EmailLookup};
pub use event::{Action, Actor, Outcome, Resource, SecurityEvent, Severity};
pub use opaque::{OpaqueToken, TokenHash, TokenKind};
pub use password::{Argon2Params, CompositionRules, Password, PasswordContext, PasswordHasher, PasswordPolicy};
pub use permission::{Permission, Scope};
pub use secret::Secret;
pub use session::{Session, SessionId, SessionMode, SessionPolicy};
pub use throttle::{Attempts, ThrottleKey, ThrottlePolicy, Verdict};
pub use user::{NewUser, RoleName, User, UserId};
