//! The client against a scripted fake control plane: watch parsing over a real socket,
//! error mapping, timeouts, and the mirror's resume and relist logic.

mod errors;
mod mirror;
mod server;
mod watch;
