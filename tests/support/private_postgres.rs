//! A PostgreSQL server of a test's own (Debian's binaries, `initdb` into a temporary directory, on a free port), for
//! tests that stop and start it: the shared server at `TEST_POSTGRES_URL` serves every other test at once.
//! Run as the `postgres` user when the tests run as root (PostgreSQL refuses root).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// Initialises and starts a server with one database, `onbehalf`.
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql (Debian's postgresql package)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            // The postgres user must reach and own it.
            run(Command::new("chmod").arg("777").arg(dir.path()));
        }
        let port = super::free_port();
        let server = Self {
            bin,
            data,
            port,
            _dir: dir,
        };
        run(server
            .command("initdb")
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&server.data));
        server.start_again();
        run(server.command("createdb").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "onbehalf",
        ]));
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/onbehalf", self.port)
    }

    /// Stops the server as an operator's restart does (`-m fast`: clients are disconnected, work rolled back).
    pub fn stop(&self) {
        run(self
            .command("pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&self.data));
    }

    /// Starts it (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            socket_dir(&self.data)
        );
        run(self
            .command("pg_ctl")
            .args(["start", "-w", "-l"])
            .arg(self.data.with_file_name("log"))
            .args(["-o", &options, "-D"])
            .arg(&self.data));
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .output();
    }
}

/// Its Unix socket goes beside the data directory, not into /var/run/postgresql (the shared server's).
fn socket_dir(data: &Path) -> String {
    data.parent().unwrap().display().to_string()
}

fn is_root() -> bool {
    let id = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
