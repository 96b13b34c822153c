//! The verbs that change a running system through `conway up`: `conway deploy`,
//! `conway apply`, `conway chaos kill|stop|jobs` and `conway events`. Each speaks to
//! the control plane through `conway-client`; API errors exit 1, an unreachable
//! control plane 3 (see `crate::exit`).

mod apply;
mod chaos;
mod deploy;

pub(crate) use apply::apply;
pub(crate) use chaos::{chaos_jobs, chaos_kill, chaos_stop, events};
pub(crate) use deploy::{DeployArgs, deploy};

use super::format::timestamp;
use super::output::{print_json, print_out};
