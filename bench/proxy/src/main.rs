//! Helpers of `bench/proxy.sh` (see `bench/README.md`); standard library only.
//!
//! `proxy-bench-helper hold ADDR N TIMEOUT_S`
//!   Opens N connections to ADDR one after another; on each sends one `GET /` (HTTP/1.1,
//!   keep-alive) and reads the whole response, so that each becomes an idle keep-alive
//!   client connection of the proxy (one at a time, so the proxy needs one upstream
//!   connection, not N). Prints `opened N failed F`, then waits for a line on stdin (or
//!   TIMEOUT_S seconds), counts the connections the proxy still holds open, prints
//!   `alive K`, and exits, closing them all.
//!
//! `proxy-bench-helper ports N`
//!   Prints N free loopback TCP ports (bound together, then released), on one line.
//!
//! `proxy-bench-helper sample ADMIN_ADDR METRIC DURATION_MS INTERVAL_MS`
//!   Reads `http://ADMIN_ADDR/metrics` every INTERVAL_MS for DURATION_MS and prints
//!   `EPOCH_MS LINE` for each sample line whose name starts with METRIC.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["hold", addr, n, timeout] => match (n.parse(), timeout.parse()) {
            (Ok(n), Ok(timeout)) => hold(addr, n, Duration::from_secs(timeout)),
            _ => Err("hold: N and TIMEOUT_S are numbers".to_owned()),
        },
        ["ports", n] => match n.parse() {
            Ok(n) => ports(n),
            Err(_) => Err("ports: N is a number".to_owned()),
        },
        ["sample", addr, metric, duration, interval] => match (duration.parse(), interval.parse())
        {
            (Ok(duration), Ok(interval)) => sample(
                addr,
                metric,
                Duration::from_millis(duration),
                Duration::from_millis(interval),
            ),
            _ => Err("sample: DURATION_MS and INTERVAL_MS are numbers".to_owned()),
        },
        _ => Err("usage: proxy-bench-helper hold ADDR N TIMEOUT_S | ports N | sample ADMIN_ADDR METRIC DURATION_MS INTERVAL_MS".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("proxy-bench-helper: {message}");
            ExitCode::FAILURE
        }
    }
}

fn ports(n: usize) -> Result<(), String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port().to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    println!("{}", ports.join(" "));
    Ok(())
}

fn hold(addr: &str, n: usize, timeout: Duration) -> Result<(), String> {
    let mut open = Vec::with_capacity(n);
    let mut failed = 0usize;
    for _ in 0..n {
        match one_request(addr) {
            Ok(stream) => open.push(stream),
            Err(_) => failed += 1,
        }
    }
    println!("opened {} failed {failed}", open.len());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(timeout);
    let alive = open.iter().filter(|stream| is_open(stream)).count();
    println!("alive {alive}");
    std::io::stdout().flush().map_err(|e| e.to_string())
}

/// Connects, sends one request, reads its response through, and keeps the connection.
fn one_request(addr: &str) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: proxy-bench-helper\r\n\r\n")?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..read]);
        if response_complete(&buf) {
            break;
        }
    }
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("not a 200"));
    }
    Ok(stream)
}

/// Whether `buf` holds a whole response (Content-Length or chunked).
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    for line in head.lines() {
        if let Some(value) = line.strip_prefix("content-length:") {
            return value
                .trim()
                .parse::<usize>()
                .is_ok_and(|len| body.len() >= len);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    true
}

/// Whether the peer still holds the connection open (nothing to read, no FIN, no reset).
fn is_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
    }
}

fn sample(addr: &str, metric: &str, duration: Duration, interval: Duration) -> Result<(), String> {
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    while started.elapsed() < duration {
        let tick = Instant::now();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_millis();
        if let Ok(text) = fetch_metrics(addr) {
            for line in text.lines().filter(|line| line.starts_with(metric)) {
                writeln!(out, "{now_ms} {line}").map_err(|e| e.to_string())?;
            }
            out.flush().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(interval.saturating_sub(tick.elapsed()));
    }
    Ok(())
}

fn fetch_metrics(addr: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}
