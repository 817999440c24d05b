//! Starts the real pinned redis-server (`make redis` installs it into .tools/redis) on a free
//! loopback port with a throw-away folder and no persistence, for the shared quota store's tests.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::envoy::{TempDir, free_port, repo_root};

/// A running redis-server, killed on drop.
#[derive(Debug)]
pub struct Redis {
    pub port: u16,
    password: Option<String>,
    child: Option<Child>,
    dir: TempDir,
}

/// The redis-server binary: `TOLLGATE_REDIS_BIN`, or the project-local install. Panics with the
/// install hint when there is none: a test of the shared store never passes without one.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("TOLLGATE_REDIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/redis/bin/redis-server"));
    assert!(
        path.is_file(),
        "redis-server not found at {}: run `make redis` (installs the pinned redis-server into \
         .tools/redis) or set TOLLGATE_REDIS_BIN to a redis-server or valkey-server",
        path.display()
    );
    path
}

impl Redis {
    /// Starts a server without a password.
    pub async fn start() -> Redis {
        Redis::start_with(None).await
    }

    /// Starts a server that asks for `password` when one is given.
    pub async fn start_with(password: Option<&str>) -> Redis {
        let dir = std::env::temp_dir().join(format!("tollgate-redis-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis {
            port: 0,
            password: password.map(str::to_owned),
            child: None,
            dir: TempDir(dir),
        };
        // A port found free can be taken before the server binds it: try a few.
        for _ in 0..5 {
            redis.port = free_port();
            if redis.spawn().await {
                return redis;
            }
        }
        panic!("redis-server did not start; log:\n{}", redis.log());
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its data is gone: nothing is persisted); [`Redis::restart`] brings one
    /// back on the same port.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts the server again on its port, empty.
    pub async fn restart(&mut self) {
        self.stop().await;
        assert!(self.spawn().await, "redis-server did not restart; log:\n{}", self.log());
    }

    /// Sends one command and returns the raw RESP answer (e.g. `GET key` → `$1\r\n5\r\n`).
    pub async fn command(&self, args: &[&str]) -> String {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut out = Vec::new();
        if let Some(p) = &self.password {
            out.extend(resp(&["AUTH", p]));
        }
        out.extend(resp(args));
        conn.write_all(&out).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let replies = if self.password.is_some() { 2 } else { 1 };
        // Enough for the simple answers the tests read (one line, or a bulk string of two lines).
        while count_replies(&answer) < replies {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "redis-server closed the connection");
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        match &self.password {
            Some(_) => text
                .split_once("\r\n")
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_default(),
            None => text,
        }
    }

    /// The integer under `key`, 0 when absent.
    pub async fn get_u64(&self, key: &str) -> u64 {
        let answer = self.command(&["GET", key]).await;
        answer.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0)
    }

    /// Starts the process on `self.port` and waits until it answers `PING`; false if it exited.
    async fn spawn(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.0.join("redis.log")).unwrap();
        let mut cmd = Command::new(binary());
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&self.dir.0)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if self.pong().await {
                self.child = Some(child);
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill().await;
        false
    }

    async fn pong(&self) -> bool {
        let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if conn.write_all(&resp(&["PING"])).await.is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        // A server with a password answers NOAUTH, which still means it is up.
        matches!(conn.read(&mut buf).await, Ok(n) if n > 0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("redis.log")).unwrap_or_default()
    }
}

/// A command in RESP.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
    }
    out
}

/// Complete replies in `answer` (simple lines, integers, errors and bulk strings only).
fn count_replies(answer: &[u8]) -> usize {
    let text = String::from_utf8_lossy(answer);
    let mut lines = text.split_inclusive("\r\n").filter(|l| l.ends_with("\r\n"));
    let mut n = 0;
    while let Some(l) = lines.next() {
        if l.starts_with('$') && !l.starts_with("$-1") && lines.next().is_none() {
            break;
        }
        n += 1;
    }
    n
}
