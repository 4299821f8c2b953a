//! SQL functions of our own, added to every SQLite connection.
use std::ffi::{c_char, c_int};

/// Makes `flownexus_f64` available on every SQLite connection opened after
/// this call (SQLite's auto-extension list). Idempotent; `Db::connect`
/// calls it before opening any connection.
pub fn register_functions() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `add_functions` has the entry-point signature SQLite
        // expects and lives for the whole process.
        let rc = unsafe { libsqlite3_sys::sqlite3_auto_extension(Some(add_functions)) };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::error!(rc, "cannot register flownexus_f64 with SQLite");
        }
    });
}

/// SQLite calls this for every new connection.
unsafe extern "C" fn add_functions(
    db: *mut libsqlite3_sys::sqlite3,
    _error: *mut *mut c_char,
    _api: *const libsqlite3_sys::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection SQLite is opening; the name is a
    // NUL-terminated static string and the function pointer is valid for
    // the life of the process.
    unsafe {
        libsqlite3_sys::sqlite3_create_function_v2(
            db,
            c"flownexus_f64".as_ptr(),
            1,
            libsqlite3_sys::SQLITE_UTF8
                | libsqlite3_sys::SQLITE_DETERMINISTIC
                | libsqlite3_sys::SQLITE_INNOCUOUS,
            std::ptr::null_mut(),
            Some(f64_from_bits),
            None,
            None,
            None,
        )
    }
}

/// `flownexus_f64(bits)`: the double whose IEEE-754 bits are the integer
/// `bits`; NULL stays NULL.
unsafe extern "C" fn f64_from_bits(
    ctx: *mut libsqlite3_sys::sqlite3_context,
    argc: c_int,
    argv: *mut *mut libsqlite3_sys::sqlite3_value,
) {
    // SAFETY: SQLite passes `argc` valid values (1, as registered) and a
    // live context.
    unsafe {
        if argc != 1 {
            libsqlite3_sys::sqlite3_result_null(ctx);
            return;
        }
        let arg = *argv;
        if libsqlite3_sys::sqlite3_value_type(arg) == libsqlite3_sys::SQLITE_INTEGER {
            let bits = libsqlite3_sys::sqlite3_value_int64(arg) as u64;
            libsqlite3_sys::sqlite3_result_double(ctx, f64::from_bits(bits));
        } else {
            libsqlite3_sys::sqlite3_result_null(ctx);
        }
    }
}
