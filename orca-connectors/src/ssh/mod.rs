//! SSH connector (russh).
