//! The only module that talks to Docker.
