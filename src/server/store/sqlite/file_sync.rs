//! Syncing the database file to disk through a descriptor SQLite opened.
//!
//! The checkpointer syncs the database file before it takes the write gate
//! (see `wal`). It must not open the file itself: POSIX releases every lock
//! a process holds on a file as soon as any one of its descriptors of that
//! file is closed. Closing a descriptor of our own would drop the shared
//! lock by which the server's connections tell other processes that the
//! database is in use (SQLite, which counts its locks per process, would
//! not know), and the next process to close a connection to the database
//! (a backup, the `sqlite3` shell, a monitoring script) would take itself
//! for the last user, copy the log and delete it under the server. SQLite
//! keeps a descriptor of its own open until the process's locks on the
//! file are released, so the sync goes through one: a read-only connection
//! kept by the checkpointer, and its file's `xSync`.
use libsqlite3_sys as ffi;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

pub struct FileSync {
    db: NonNull<ffi::sqlite3>,
}

// SAFETY: opened in SQLite's multi-thread mode and used by one thread at a
// time (`&mut self`).
unsafe impl Send for FileSync {}

impl FileSync {
    /// Opens `path` read-only, for syncing only.
    pub fn open(path: &Path) -> io::Result<FileSync> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("a NUL byte in the SQLite path"))?;
        let mut db = std::ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: a valid C string and out pointer.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, std::ptr::null()) };
        let db = NonNull::new(db).ok_or_else(|| {
            io::Error::other(format!(
                "sqlite3_open_v2 returned no connection (code {rc})"
            ))
        })?;
        let sync = FileSync { db };
        if rc != ffi::SQLITE_OK {
            return Err(io::Error::other(format!(
                "cannot open {} for syncing (SQLite code {rc})",
                path.display()
            )));
        }
        Ok(sync)
    }

    /// Writes the database file's dirty pages to disk (`fdatasync`).
    pub fn sync(&mut self) -> io::Result<()> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: an open connection; FILE_POINTER writes a `sqlite3_file*`
        // to the pointer it is given.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                self.db.as_ptr(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            )
        };
        // SAFETY: a non-null file from SQLite, whose methods are set while
        // it is open.
        let x_sync = (rc == ffi::SQLITE_OK && !file.is_null())
            .then(|| unsafe { (*file).pMethods.as_ref() })
            .flatten()
            .and_then(|methods| methods.xSync)
            .ok_or_else(|| io::Error::other("the SQLite database file is not open"))?;
        // SAFETY: SQLite's own file and its own sync method; this
        // connection is used by one thread at a time and holds no
        // transaction.
        let rc = unsafe { x_sync(file, ffi::SQLITE_SYNC_NORMAL | ffi::SQLITE_SYNC_DATAONLY) };
        if rc != ffi::SQLITE_OK {
            return Err(io::Error::other(format!(
                "syncing the database file failed (SQLite code {rc})"
            )));
        }
        Ok(())
    }
}

impl Drop for FileSync {
    fn drop(&mut self) {
        // SAFETY: an open connection with no statements.
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}
