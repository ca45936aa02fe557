//! Running the benchmark: one measured load run per subject (relay or a fastway runtime), repeated
//! and reduced to medians, or the idle-memory mode.

use super::BenchError;
use super::child::{self, GatewayArgs, Process};
use super::cli::{LoadArgs, Mode, RuntimeChoice};
use super::echo;
use super::load::{self, Client, ClientPlan, ClientResult, Phase, RunState};
use super::measure::{self, Histogram};
use crate::config::RuntimeKind;
use crate::serve::{RunningGateway, ServeOptions};
use fastway_core::frame::DEFAULT_MAX_PACKET;
use fastway_core::gateway::GatewayConfig;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Connections being set up at once (keeps the listen backlogs from overflowing).
const CONNECT_CONCURRENCY: usize = 256;
/// How long clients may take to bring their last messages home after the measured window.
const DRAIN: Duration = Duration::from_secs(10);
/// Pause in idle mode before each memory reading, so the gateway has settled.
const SETTLE: Duration = Duration::from_millis(1500);

/// What is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The baseline relay.
    Relay,
    /// fastway on a runtime.
    Fastway(RuntimeKind),
    /// A gateway that was already running (`--target`).
    Target,
}

impl Subject {
    /// Its name in reports.
    pub fn label(&self) -> String {
        match self {
            Subject::Relay => "relay".into(),
            Subject::Fastway(kind) => format!("fastway-{}", kind.name()),
            Subject::Target => "target".into(),
        }
    }
}

/// The figures of one subject under load (the median over repeats).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadResult {
    /// What was measured.
    pub subject: String,
    /// Round trips completed in the measured window.
    pub messages: u64,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Round trips per second (each is one message client → server and its echo back).
    pub msgs_per_sec: f64,
    /// Payload megabytes (10^6) per second through the gateway, both directions.
    pub mb_per_sec: f64,
    /// Round-trip time percentiles and maximum, microseconds.
    pub p50_us: f64,
    /// 99th percentile RTT, µs.
    pub p99_us: f64,
    /// 99.9th percentile RTT, µs.
    pub p999_us: f64,
    /// Largest RTT, µs.
    pub max_us: f64,
    /// Gateway (or relay) CPU time per round trip, µs (two frames forwarded).
    pub cpu_us_per_msg: Option<f64>,
    /// Gateway CPU use over the window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// Gateway peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// Clients that failed (closed, protocol error, did not drain).
    pub failed_clients: u32,
    /// Runs this is the median of.
    pub runs: u32,
}

/// Idle-memory figures of one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleResult {
    /// What was measured.
    pub subject: String,
    /// Idle client connections open (each with one vconn on fastway).
    pub clients: u32,
    /// Resident memory before the clients connected, KiB.
    pub rss_before_kib: u64,
    /// Resident memory with all clients connected, KiB.
    pub rss_after_kib: u64,
    /// Peak resident memory, KiB.
    pub peak_rss_kib: u64,
    /// (after − before) / clients, bytes.
    pub bytes_per_client: f64,
}

/// Everything one invocation measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The day of the run (UTC, `YYYY-MM-DD`).
    pub date: String,
    /// The options it ran with.
    pub args: LoadArgs,
    /// Load results, relay first.
    pub load: Vec<LoadResult>,
    /// Idle-memory results.
    pub idle: Vec<IdleResult>,
}

/// Runs what `args` ask for.
pub fn session(args: &LoadArgs) -> Result<Report, BenchError> {
    let duration_ok = args.duration > 0.0 && args.duration <= 3600.0;
    if !duration_ok || !(0.0..=600.0).contains(&args.warmup) {
        return Err(BenchError::Setup(
            "--duration must be in (0, 3600] s and --warmup in [0, 600] s".into(),
        ));
    }
    raise_fd_limit(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.load_threads.max(1))
        .enable_all()
        .build()
        .map_err(|err| BenchError::io("start the load runtime", err))?;
    let subjects = subjects(args);
    let mut report = Report {
        date: today(),
        args: args.clone(),
        load: Vec::new(),
        idle: Vec::new(),
    };
    if let Some(clients) = args.idle {
        for subject in subjects {
            match idle(&runtime, args, subject, clients) {
                Ok(result) => report.idle.push(result),
                // One runtime's failure (e.g. out of threads) should not hide the others' figures.
                Err(err) => eprintln!("fastway-bench: {}", labelled(subject, err)),
            }
        }
        if report.idle.is_empty() {
            return Err(BenchError::Load("no subject could be measured".into()));
        }
        return Ok(report);
    }
    let mut runs: Vec<Vec<LoadResult>> = vec![Vec::new(); subjects.len()];
    for round in 0..args.repeat {
        for (i, subject) in subjects.iter().enumerate() {
            if !args.quiet {
                eprintln!(
                    "[{}] run {}/{}: {} clients × {} vconns × {} in flight, {} B, {} s",
                    subject.label(),
                    round + 1,
                    args.repeat,
                    args.clients,
                    args.vconns,
                    args.inflight,
                    args.size,
                    args.duration
                );
            }
            runs[i]
                .push(load_run(&runtime, args, *subject).map_err(|err| labelled(*subject, err))?);
        }
    }
    report.load = runs.iter().map(|r| median(r)).collect();
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(report)
}

/// Says which subject an error came from.
fn labelled(subject: Subject, err: BenchError) -> BenchError {
    BenchError::Load(format!("[{}] {err}", subject.label()))
}

fn subjects(args: &LoadArgs) -> Vec<Subject> {
    if args.target.is_some() {
        return vec![Subject::Target];
    }
    let mut subjects = Vec::new();
    // The relay is not a reference for idle memory (it holds two sockets and copy buffers per client);
    // it is only measured there when asked for alone.
    let relay = match args.mode {
        Mode::Relay => true,
        Mode::Both => args.idle.is_none(),
        Mode::Fastway => false,
    };
    if relay {
        subjects.push(Subject::Relay);
    }
    if args.mode != Mode::Relay {
        match args.runtime {
            RuntimeChoice::Tokio => subjects.push(Subject::Fastway(RuntimeKind::Tokio)),
            RuntimeChoice::Smol => subjects.push(Subject::Fastway(RuntimeKind::Smol)),
            RuntimeChoice::Std => subjects.push(Subject::Fastway(RuntimeKind::Std)),
            RuntimeChoice::All => subjects.extend(
                [RuntimeKind::Tokio, RuntimeKind::Smol, RuntimeKind::Std].map(Subject::Fastway),
            ),
        }
    }
    subjects
}

/// Raises the open-files limit to the hard limit (children inherit it) and warns when that is still
/// too low for the connections asked for.
fn raise_fd_limit(args: &LoadArgs) {
    let clients = u64::from(args.idle.unwrap_or(args.clients));
    let needed = 2 * clients + 2 * u64::from(args.servers) + 256;
    // A privileged user may lift the hard limit too; anyone may raise the soft one up to it.
    if let Ok((_, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        if hard < needed {
            let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, needed, needed);
        }
    }
    match rlimit::increase_nofile_limit(needed.max(65_536)) {
        Ok(limit) if limit < needed => eprintln!(
            "warning: open-files limit is {limit}, {needed} may be needed (raise the hard limit: ulimit -Hn)"
        ),
        Ok(_) => {}
        Err(err) => eprintln!("warning: cannot raise the open-files limit: {err}"),
    }
}

/// The gateway (or relay) a run talks to.
enum UnderTest {
    Child(Process),
    InProcess(RunningGateway),
    Target {
        client: SocketAddr,
        server: SocketAddr,
        pid: Option<u32>,
    },
}

impl UnderTest {
    fn client_addr(&self) -> SocketAddr {
        match self {
            UnderTest::Child(process) => process.client_addr,
            UnderTest::InProcess(running) => running.client_addr(),
            UnderTest::Target { client, .. } => *client,
        }
    }

    fn server_addr(&self) -> Option<SocketAddr> {
        match self {
            UnderTest::Child(process) => process.server_addr,
            UnderTest::InProcess(running) => Some(running.server_addr()),
            UnderTest::Target { server, .. } => Some(*server),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            UnderTest::Child(process) => Some(process.pid()),
            UnderTest::InProcess(_) => None,
            UnderTest::Target { pid, .. } => *pid,
        }
    }

    fn stop(self) {
        match self {
            UnderTest::Child(process) => drop(process),
            UnderTest::InProcess(running) => {
                if let Err(err) = running.shutdown() {
                    eprintln!("warning: in-process gateway: {err}");
                }
            }
            UnderTest::Target { .. } => {}
        }
    }
}

fn max_len(args: &LoadArgs) -> u32 {
    // Length = ConnID + payload.
    DEFAULT_MAX_PACKET.max(args.size + 4)
}

/// Starts the subject with its echo servers; returns it, whether clients must dial, and the echo
/// tasks (aborted by the caller).
fn start(
    runtime: &Runtime,
    args: &LoadArgs,
    subject: Subject,
) -> Result<(UnderTest, bool, Vec<JoinHandle<()>>), BenchError> {
    let max_len = max_len(args);
    let mut echoes = Vec::new();
    let under_test = match subject {
        Subject::Relay => {
            let mut backends = Vec::new();
            for _ in 0..args.servers {
                let listener = runtime
                    .block_on(echo::bind_raw())
                    .map_err(|err| BenchError::io("bind an echo server", err))?;
                backends.push(
                    listener
                        .local_addr()
                        .map_err(|err| BenchError::io("echo server address", err))?,
                );
                echoes.push(runtime.spawn(async move {
                    if let Err(err) = echo::serve_raw(listener, max_len).await {
                        eprintln!("echo server: {err}");
                    }
                }));
            }
            UnderTest::Child(child::spawn_relay(&backends, args.worker_threads)?)
        }
        Subject::Fastway(kind) if args.in_process => {
            let mut options = ServeOptions::loopback(GatewayConfig {
                max_packet: max_len,
                client_max_conn: 0,
                max_clients: 0,
                client_idle_timeout: None,
                server_idle_timeout: None,
                ..GatewayConfig::default()
            });
            options.worker_threads = args.worker_threads;
            let running = crate::serve::start(kind, options)
                .map_err(|err| BenchError::io("start the in-process gateway", err))?;
            UnderTest::InProcess(running)
        }
        Subject::Fastway(kind) => {
            let bin = match &args.gateway_bin {
                Some(bin) => bin.clone(),
                None => child::default_gateway_bin()?,
            };
            UnderTest::Child(child::spawn_gateway(&GatewayArgs {
                bin: &bin,
                runtime: kind.name(),
                worker_threads: args.worker_threads,
                max_packet: max_len,
            })?)
        }
        Subject::Target => {
            let target = args
                .target
                .ok_or_else(|| BenchError::Setup("--target needs CLIENT,SERVER".into()))?;
            UnderTest::Target {
                client: target.client,
                server: target.server,
                pid: args.pid,
            }
        }
    };
    let dial = subject != Subject::Relay;
    if dial {
        let server_addr = under_test.server_addr().ok_or_else(|| {
            BenchError::Setup("the gateway did not report its server port".into())
        })?;
        for id in 1..=args.servers {
            let key = args.auth_key.as_bytes().to_vec();
            echoes.push(runtime.spawn(async move {
                if let Err(err) = echo::serve_gateway(server_addr, id, key, max_len).await {
                    eprintln!("echo server {id}: {err}");
                }
            }));
        }
    }
    Ok((under_test, dial, echoes))
}

/// Connects `count` clients, at most [`CONNECT_CONCURRENCY`] at a time.
async fn connect_all(
    addr: SocketAddr,
    count: u32,
    vconns: u32,
    servers: u32,
    dial: bool,
    max_len: u32,
) -> Result<Vec<Client>, BenchError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let permits = Arc::clone(&permits);
        let plan = ClientPlan {
            addr,
            index,
            vconns,
            servers,
            dial,
            max_len,
        };
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, load::connect(&plan).await)
        });
    }
    let mut clients: Vec<(u32, Client)> = Vec::with_capacity(count as usize);
    while let Some(joined) = tasks.join_next().await {
        let (index, connected) =
            joined.map_err(|err| BenchError::Load(format!("connect task: {err}")))?;
        let client = connected.map_err(|err| {
            BenchError::Load(format!(
                "client {index} of {count} could not connect: {err}"
            ))
        })?;
        clients.push((index, client));
    }
    clients.sort_unstable_by_key(|(index, _)| *index);
    Ok(clients.into_iter().map(|(_, client)| client).collect())
}

/// One measured run of one subject.
fn load_run(
    runtime: &Runtime,
    args: &LoadArgs,
    subject: Subject,
) -> Result<LoadResult, BenchError> {
    let (under_test, dial, echoes) = start(runtime, args, subject)?;
    let result = drive(runtime, args, subject, &under_test, dial);
    for echo in echoes {
        echo.abort();
    }
    under_test.stop();
    result
}

fn drive(
    runtime: &Runtime,
    args: &LoadArgs,
    subject: Subject,
    under_test: &UnderTest,
    dial: bool,
) -> Result<LoadResult, BenchError> {
    let max_len = max_len(args);
    let clients = runtime.block_on(connect_all(
        under_test.client_addr(),
        args.clients,
        args.vconns,
        args.servers,
        dial,
        max_len,
    ))?;
    let state = Arc::new(RunState::default());
    let tasks: Vec<JoinHandle<Result<ClientResult, load::LoadError>>> = clients
        .into_iter()
        .map(|client| runtime.spawn(client.run(Arc::clone(&state), args.size, args.inflight)))
        .collect();
    let progress =
        (!args.quiet).then(|| runtime.spawn(progress(Arc::clone(&state), subject.label())));
    let pid = under_test.pid();
    let window = runtime.block_on(async {
        state.set_phase(Phase::Warmup);
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
        let cpu_before = pid.map(measure::cpu_time).transpose()?;
        let started = Instant::now();
        state.set_phase(Phase::Measure);
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        state.set_phase(Phase::Done);
        let seconds = started.elapsed().as_secs_f64();
        let cpu_after = pid.map(measure::cpu_time).transpose()?;
        let memory = pid.map(measure::memory).transpose()?;
        let cpu = cpu_before.zip(cpu_after).map(|(a, b)| b.saturating_sub(a));
        Ok::<_, BenchError>((seconds, cpu, memory))
    });
    let (seconds, cpu, memory) = window?;
    let (rtt, bytes, failed) = runtime.block_on(async {
        let mut rtt = Histogram::default();
        let (mut bytes, mut failed, mut first_error) = (0u64, 0u32, None);
        let deadline = tokio::time::Instant::now() + DRAIN;
        for task in tasks {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(result))) => {
                    rtt.merge(&result.rtt);
                    bytes += result.bytes;
                }
                Ok(Ok(Err(err))) => {
                    failed += 1;
                    first_error.get_or_insert(err.to_string());
                }
                Ok(Err(err)) => {
                    failed += 1;
                    first_error.get_or_insert(err.to_string());
                }
                Err(_) => {
                    failed += 1;
                    first_error.get_or_insert("did not drain in time".to_string());
                }
            }
        }
        if let Some(err) = first_error {
            eprintln!(
                "[{}] {failed} clients failed; first: {err}",
                subject.label()
            );
        }
        (rtt, bytes, failed)
    });
    if let Some(progress) = progress {
        progress.abort();
    }
    let messages = rtt.count();
    let us = |nanos: u64| nanos as f64 / 1000.0;
    Ok(LoadResult {
        subject: subject.label(),
        messages,
        seconds,
        msgs_per_sec: messages as f64 / seconds,
        mb_per_sec: 2.0 * bytes as f64 / seconds / 1e6,
        p50_us: us(rtt.quantile(0.5)),
        p99_us: us(rtt.quantile(0.99)),
        p999_us: us(rtt.quantile(0.999)),
        max_us: us(rtt.max()),
        cpu_us_per_msg: cpu
            .filter(|_| messages > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / messages as f64),
        cpu_percent: cpu.map(|cpu| cpu.as_secs_f64() / seconds * 100.0),
        peak_rss_kib: memory.map(|m| m.peak_kib),
        failed_clients: failed,
        runs: 1,
    })
}

/// Prints the echo rate once a second on stderr (one updating line on a terminal).
async fn progress(state: Arc<RunState>, label: String) {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = 0;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = state.echoes.load(Ordering::Relaxed);
        let phase = match state.phase() {
            Phase::Ready => "ready",
            Phase::Warmup => "warm-up",
            Phase::Measure => "measuring",
            Phase::Done => "draining",
        };
        let line = format!(
            "[{label}] {:>5.1} s {phase:<9} {:>10.0} msg/s",
            started.elapsed().as_secs_f64(),
            (now - last) as f64
        );
        last = now;
        let mut stderr = std::io::stderr().lock();
        let _ = if tty {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
    }
}

/// The idle-memory mode for one subject.
fn idle(
    runtime: &Runtime,
    args: &LoadArgs,
    subject: Subject,
    clients: u32,
) -> Result<IdleResult, BenchError> {
    let (under_test, dial, echoes) = start(runtime, args, subject)?;
    let result = (|| {
        let pid = under_test.pid().ok_or_else(|| {
            BenchError::Setup(
                "idle mode measures a separate process: run without --in-process (or give --pid)"
                    .into(),
            )
        })?;
        std::thread::sleep(SETTLE);
        let before = measure::memory(pid)?;
        if !args.quiet {
            eprintln!(
                "[{}] connecting {clients} idle clients (gateway at {} KiB)",
                subject.label(),
                before.rss_kib
            );
        }
        let open = runtime.block_on(connect_all(
            under_test.client_addr(),
            clients,
            1,
            args.servers,
            dial,
            max_len(args),
        ))?;
        std::thread::sleep(SETTLE);
        let after = measure::memory(pid)?;
        drop(open);
        Ok(IdleResult {
            subject: subject.label(),
            clients,
            rss_before_kib: before.rss_kib,
            rss_after_kib: after.rss_kib,
            peak_rss_kib: after.peak_kib,
            bytes_per_client: (after.rss_kib.saturating_sub(before.rss_kib) * 1024) as f64
                / f64::from(clients),
        })
    })();
    for echo in echoes {
        echo.abort();
    }
    under_test.stop();
    result
}

/// The median of each figure over the runs of one subject.
fn median(runs: &[LoadResult]) -> LoadResult {
    fn mid(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => 0.0,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        }
    }
    let all = |f: fn(&LoadResult) -> f64| mid(runs.iter().map(f).collect());
    let some = |f: fn(&LoadResult) -> Option<f64>| {
        let values: Vec<f64> = runs.iter().filter_map(f).collect();
        (!values.is_empty()).then(|| mid(values))
    };
    let Some(first) = runs.first() else {
        return LoadResult {
            subject: String::new(),
            messages: 0,
            seconds: 0.0,
            msgs_per_sec: 0.0,
            mb_per_sec: 0.0,
            p50_us: 0.0,
            p99_us: 0.0,
            p999_us: 0.0,
            max_us: 0.0,
            cpu_us_per_msg: None,
            cpu_percent: None,
            peak_rss_kib: None,
            failed_clients: 0,
            runs: 0,
        };
    };
    LoadResult {
        subject: first.subject.clone(),
        messages: all(|r| r.messages as f64) as u64,
        seconds: all(|r| r.seconds),
        msgs_per_sec: all(|r| r.msgs_per_sec),
        mb_per_sec: all(|r| r.mb_per_sec),
        p50_us: all(|r| r.p50_us),
        p99_us: all(|r| r.p99_us),
        p999_us: all(|r| r.p999_us),
        max_us: all(|r| r.max_us),
        cpu_us_per_msg: some(|r| r.cpu_us_per_msg),
        cpu_percent: some(|r| r.cpu_percent),
        peak_rss_kib: some(|r| r.peak_rss_kib.map(|k| k as f64)).map(|k| k as u64),
        failed_clients: runs.iter().map(|r| r.failed_clients).sum(),
        runs: runs.len() as u32,
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
