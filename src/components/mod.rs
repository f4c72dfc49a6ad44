//! Views used by several pages. No server functions here: components receive actions and data from pages.

pub mod countdown;
pub mod form;
pub mod link_form;
pub mod nav;
pub mod task_status;
