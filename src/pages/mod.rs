//! One file per route; each page is named `...Page`.

mod account;
mod actions;
mod activity;
mod admin;
mod connect;
mod disconnect;
mod home;
mod linked_accounts;
mod not_found;
mod sign_in;
mod sign_up;
mod transfer;

pub use account::AccountPage;
pub use actions::ActionsPage;
pub use activity::ActivityPage;
pub use admin::{
    AdminAccountPage, AdminAccountsPage, AdminAuditPage, AdminDashboardPage, AdminUsersPage, AdminWebhookPage,
    AdminWebhooksPage,
};
pub use connect::ConnectChooserPage;
pub use disconnect::DisconnectPage;
pub use home::HomePage;
pub use linked_accounts::LinkedAccountsPage;
pub use not_found::NotFoundPage;
pub use sign_in::SignInPage;
pub use sign_up::SignUpPage;
pub use transfer::{FileManagerPage, TransferTaskPage, TransferTasksPage};
