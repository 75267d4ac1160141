//! The floor: the least a proxy built on io_uring can cost per request on this machine.
//!
//! `perf/compare.sh` runs it as the `floor` case, beside ringgate and the nginx peers.
//! It relays wrk's requests to the origin and the origin's answers back, and does
//! nothing else: no parsing beyond finding where a message ends, no routing, no header
//! rewriting, no timers, no auth, no access log. What it costs per request is the
//! kernel's loopback TCP work plus io_uring's own, which every ringgate case pays as
//! well. ringgate ÷ floor is therefore the share of the CPU that is ringgate's to cut.
//!
//! Like a ringgate worker it is one thread with one ring, set up with `SINGLE_ISSUER` and
//! `DEFER_TASKRUN`, one single-shot receive or send in flight per socket. Each client
//! connection gets its own keep-alive connection to the origin, opened when the client
//! is accepted.
//!
//! It relays what the benchmark sends and nothing more: requests without a body and not
//! pipelined, responses framed by `Content-Length`. Anything else closes the connection
//! with a message on stderr.
//!
//! Usage: floor LISTEN_ADDR ORIGIN_ADDR (for example `floor 127.0.0.1:18088 127.0.0.1:18080`)

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Room for one request head or one response; the origin's answers are far smaller.
const BUF_LEN: usize = 16 * 1024;
/// `user_data` of the multishot accept.
const ACCEPT: u64 = u64::MAX;

/// What a relay's one operation in flight is doing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    ReadRequest,
    WriteRequest,
    ReadResponse,
    WriteResponse,
}

impl Step {
    const ALL: [Step; 4] = [Step::ReadRequest, Step::WriteRequest, Step::ReadResponse, Step::WriteResponse];
}

/// One client connection and its origin connection.
struct Relay {
    client: OwnedFd,
    origin: OwnedFd,
    buf: Box<[u8]>,
    /// Bytes of the current message received so far.
    filled: usize,
    /// Bytes of the current message sent so far (of `filled`).
    sent: usize,
}

fn user_data(slot: usize, step: Step) -> u64 {
    (slot as u64) << 2 | step as u64
}

fn split_user_data(data: u64) -> (usize, Step) {
    ((data >> 2) as usize, Step::ALL[(data & 3) as usize])
}

/// Where the blank line that ends a head is, counted past it.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

/// The length of a response whose head is complete in `buf`: head plus Content-Length.
fn response_len(buf: &[u8], head: usize) -> Result<usize, &'static str> {
    for line in buf[..head].split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if line[..colon].eq_ignore_ascii_case(b"content-length") {
            let value = std::str::from_utf8(&line[colon + 1..]).map_err(|_| "a Content-Length that is not text")?;
            return value
                .trim()
                .parse::<usize>()
                .map(|n| head + n)
                .map_err(|_| "a Content-Length that is not a number");
        }
    }
    Err("a response without Content-Length")
}

struct Floor {
    ring: IoUring,
    relays: Vec<Option<Relay>>,
    origin: SocketAddr,
}

impl Floor {
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: every buffer an entry points at is a relay's boxed buffer, which stays
        // where it is until the relay is dropped, and a relay is dropped only when its one
        // operation in flight has completed.
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.ring.submit()?;
        }
        Ok(())
    }

    /// Queues the next operation of the relay in `slot` for `step`.
    fn queue(&mut self, slot: usize, step: Step) -> io::Result<()> {
        let relay = self.relays[slot].as_mut().expect("a queued relay exists");
        let (client, origin) = (types::Fd(relay.client.as_raw_fd()), types::Fd(relay.origin.as_raw_fd()));
        let entry = match step {
            Step::ReadRequest | Step::ReadResponse => {
                let fd = if step == Step::ReadRequest { client } else { origin };
                let room = &mut relay.buf[relay.filled..];
                opcode::Recv::new(fd, room.as_mut_ptr(), room.len() as u32).build()
            }
            Step::WriteRequest | Step::WriteResponse => {
                let fd = if step == Step::WriteRequest { origin } else { client };
                let rest = &relay.buf[relay.sent..relay.filled];
                opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32).build()
            }
        };
        self.push(entry.user_data(user_data(slot, step)))
    }

    fn accepted(&mut self, client: OwnedFd) -> io::Result<()> {
        let origin = match TcpStream::connect(self.origin) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("floor: the origin at {} refused a connection: {e}", self.origin);
                return Ok(());
            }
        };
        origin.set_nodelay(true)?;
        // SAFETY: setsockopt with a valid socket, a pointer to an int and its size.
        let one: libc::c_int = 1;
        unsafe {
            libc::setsockopt(
                client.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let relay =
            Relay { client, origin: origin.into(), buf: vec![0; BUF_LEN].into_boxed_slice(), filled: 0, sent: 0 };
        let slot = match self.relays.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.relays.push(None);
                self.relays.len() - 1
            }
        };
        self.relays[slot] = Some(relay);
        self.queue(slot, Step::ReadRequest)
    }

    /// Handles the completion of `step` for the relay in `slot`; `Err` closes the relay.
    fn completed(&mut self, slot: usize, step: Step, result: i32) -> Result<Step, String> {
        let relay = self.relays[slot].as_mut().expect("a completing relay exists");
        if result < 0 {
            return Err(format!("{step:?} failed: {}", io::Error::from_raw_os_error(-result)));
        }
        let n = result as usize;
        match step {
            Step::ReadRequest | Step::ReadResponse => {
                if n == 0 {
                    // The client leaving is the normal end; the origin leaving is not.
                    return Err(if step == Step::ReadRequest { String::new() } else { "the origin closed".into() });
                }
                relay.filled += n;
                let got = &relay.buf[..relay.filled];
                let Some(head) = head_end(got) else {
                    return if relay.filled == BUF_LEN {
                        Err("a head larger than the buffer".into())
                    } else {
                        Ok(step)
                    };
                };
                let len = if step == Step::ReadRequest { head } else { response_len(got, head)? };
                if relay.filled < len {
                    return if len > BUF_LEN { Err("a message larger than the buffer".into()) } else { Ok(step) };
                }
                if relay.filled > len {
                    return Err("bytes after the message (a body or pipelining)".into());
                }
                relay.sent = 0;
                Ok(if step == Step::ReadRequest { Step::WriteRequest } else { Step::WriteResponse })
            }
            Step::WriteRequest | Step::WriteResponse => {
                relay.sent += n;
                if relay.sent < relay.filled {
                    return Ok(step);
                }
                relay.filled = 0;
                Ok(if step == Step::WriteRequest { Step::ReadResponse } else { Step::ReadRequest })
            }
        }
    }

    fn run(&mut self, listener: &TcpListener) -> io::Result<()> {
        let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd())).build().user_data(ACCEPT);
        self.push(accept.clone())?;
        let mut done = Vec::new();
        loop {
            self.ring.submit_and_wait(1)?;
            done.extend(self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
            for (data, result, flags) in done.drain(..) {
                if data == ACCEPT {
                    if result >= 0 {
                        // SAFETY: a successful accept's result is a new descriptor we own.
                        self.accepted(unsafe { OwnedFd::from_raw_fd(result) })?;
                    } else {
                        eprintln!("floor: accept failed: {}", io::Error::from_raw_os_error(-result));
                    }
                    if !cqueue::more(flags) {
                        self.push(accept.clone())?;
                    }
                    continue;
                }
                let (slot, step) = split_user_data(data);
                match self.completed(slot, step, result) {
                    Ok(next) => self.queue(slot, next)?,
                    Err(why) => {
                        if !why.is_empty() {
                            eprintln!("floor: closing a connection: {why}");
                        }
                        self.relays[slot] = None;
                    }
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, origin] = &args[..] else {
        eprintln!("usage: floor LISTEN_ADDR ORIGIN_ADDR");
        std::process::exit(2);
    };
    let parse = |what: &str, s: &str| -> SocketAddr {
        s.parse().unwrap_or_else(|e| {
            eprintln!("floor: {what} '{s}' is not an address:port: {e}");
            std::process::exit(2);
        })
    };
    let (listen, origin) = (parse("LISTEN_ADDR", listen), parse("ORIGIN_ADDR", origin));
    let listener = TcpListener::bind(listen).unwrap_or_else(|e| {
        eprintln!("floor: cannot listen on {listen}: {e}");
        std::process::exit(1);
    });
    let ring = IoUring::builder().setup_single_issuer().setup_defer_taskrun().build(1024).unwrap_or_else(|e| {
        eprintln!("floor: no io_uring with SINGLE_ISSUER and DEFER_TASKRUN here (Linux 6.1 or newer): {e}");
        std::process::exit(1);
    });
    let mut floor = Floor { ring, relays: Vec::new(), origin };
    if let Err(e) = floor.run(&listener) {
        eprintln!("floor: the ring failed: {e}");
        std::process::exit(1);
    }
}
