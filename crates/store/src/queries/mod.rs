//! SQL, one module per area. Every public method authorizes its subject first.

pub mod apikeys;
pub mod organizations;
pub mod users;
