pub mod endpoint;
pub mod home;
pub mod login;
pub mod logout;
pub mod not_found;
