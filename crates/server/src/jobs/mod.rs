//! Background work: each job acts as a least-privilege system subject.

pub mod provisioner;
pub mod purge;
