//! Authentication (spec/auth.md §1, §5; issue #25), one concern per module, leaves first:
//!
//! - [`state`]: what it is configured with ([`AuthState`]);
//! - [`actor`]: who a request acts as ([`Actor`], [`AgentActor`]) and the three-way
//!   answer of a scheme ([`Authn`]); read by the request log, limiters, audit, handlers;
//! - [`reason`]: why a credential was refused, before it is HTTP;
//! - [`sources`]: where each scheme finds its credential;
//! - [`request_info`]: what a scheme reads of the request;
//! - [`api_key`] and [`agent`]: the schemes, and the gate's [`api_key::precheck`];
//! - [`policy`]: the one user-status rule (dormant reactivated, others refused);
//! - [`record`]: the request log's fields and the refusal's audit entry;
//! - [`challenge`]: a refusal as its 401 and `WWW-Authenticate` (RFC 6750, RFC 9728);
//! - [`authenticator`]: the middleware every route group installs with its [`Scheme`].

pub mod actor;
pub mod agent;
pub mod api_key;
pub mod authenticator;
pub mod challenge;
pub mod policy;
pub mod reason;
pub mod record;
pub mod request_info;
pub mod sources;
pub mod state;

pub use actor::{Actor, AgentActor, Authenticated, AuthenticatedAgent, Authn, TokenSource};
pub use authenticator::{Authenticator, Scheme, authenticate};
pub use reason::{Challenge, Reason};
pub use state::{AuthState, AuthzRecording, MCP_CHALLENGE_SCOPE, MCP_PATH};
