//! Local process connector.
