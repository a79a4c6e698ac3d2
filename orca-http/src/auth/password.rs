//! Password hashing (argon2id) lives in orca-core, for every frontend; re-exported here for
//! code that used it from orca-http.

pub use orca_core::auth::{
    hash_password, hash_password_async, verify_password, verify_password_async,
};
