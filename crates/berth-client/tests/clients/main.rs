//! The clients against a real Berth (in-process, on the backend `BERTH_TEST_BACKEND` names), and
//! against clients nobody here wrote: skopeo pulling from Debian's docker-registry through
//! `docker-credential-berth`, and requests shaped as the kubelet sends them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod docker_helper;
mod helpers;
mod kubelet;
mod registry;
