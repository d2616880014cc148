//! SQL, one module per area. Every public method authorizes its subject first.

pub mod apikeys;
pub mod members;
pub mod organizations;
pub mod users;
