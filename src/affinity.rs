//! Pinning workers to CPUs (`--cpu-affinity`).
//!
//! A worker owns its connections, caches and ring; pinned, it also keeps its core's
//! caches warm and never migrates. Off by default, as nginx's `worker_cpu_affinity` is:
//! on a host shared with other work, or under a CPU quota without a cpuset, the
//! scheduler places threads better than a fixed map. `auto` pins worker *i* to the
//! *i*-th CPU this process may run on (its cpuset, as `taskset` or a container runtime
//! set it); a list pins worker *i* to the *i*-th CPU listed. With more workers than CPUs
//! the map wraps around, and the start-up log says which workers share a CPU.
//!
//! Only the workers are pinned. The control, Admin API, DNS and log threads keep the
//! process's whole CPU set: they are mostly idle, and pinning them onto a worker's CPU
//! would make them compete with it.

use std::fmt;
use std::str::FromStr;

/// CPUs numbered this high or higher cannot be named (the kernel's `cpu_set_t` size).
pub const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

/// What `--cpu-affinity` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuAffinity {
    /// Workers go wherever the scheduler puts them.
    Off,
    /// Worker *i* on the *i*-th CPU of the process's CPU set.
    Auto,
    /// Worker *i* on the *i*-th CPU listed.
    List(Vec<usize>),
}

/// Why a `--cpu-affinity` value is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AffinityError {
    #[error("expected off, auto or a CPU list such as 0-3,8")]
    Empty,
    #[error("{0:?} is not a CPU number or a range such as 2-5")]
    NotANumber(String),
    #[error("the range {0}-{1} goes down; write the lower CPU first")]
    Backwards(usize, usize),
    #[error("CPU {0} is out of range (CPU numbers go up to {max})", max = MAX_CPUS - 1)]
    TooHigh(usize),
    #[error("CPU {0} is listed twice")]
    Twice(usize),
    #[error("CPU {cpu} is not one this process may run on (allowed: {allowed})")]
    NotAllowed { cpu: usize, allowed: CpuList },
    #[error("this process may run on no CPU at all")]
    NoCpu,
}

impl FromStr for CpuAffinity {
    type Err = AffinityError;

    fn from_str(s: &str) -> Result<Self, AffinityError> {
        match s.trim() {
            "" => Err(AffinityError::Empty),
            "off" => Ok(CpuAffinity::Off),
            "auto" => Ok(CpuAffinity::Auto),
            list => parse_list(list).map(CpuAffinity::List),
        }
    }
}

/// A CPU list in the kernel's notation (`0-3,8`), in the order given; a CPU may appear
/// once.
fn parse_list(s: &str) -> Result<Vec<usize>, AffinityError> {
    let number = |t: &str| {
        let t = t.trim();
        // `usize::from_str` takes a leading `+`; a CPU list does not.
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AffinityError::NotANumber(t.to_owned()));
        }
        match t.parse::<usize>() {
            Ok(n) if n < MAX_CPUS => Ok(n),
            Ok(n) => Err(AffinityError::TooHigh(n)),
            Err(_) => Err(AffinityError::TooHigh(usize::MAX)),
        }
    };
    let mut cpus = Vec::new();
    let mut seen = [false; MAX_CPUS];
    for item in s.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(item)?;
                (n, n)
            }
        };
        if hi < lo {
            return Err(AffinityError::Backwards(lo, hi));
        }
        for (cpu, seen) in seen.iter_mut().enumerate().take(hi + 1).skip(lo) {
            if std::mem::replace(seen, true) {
                return Err(AffinityError::Twice(cpu));
            }
            cpus.push(cpu);
        }
    }
    Ok(cpus)
}

/// A set of CPUs, shown in the kernel's list notation (`0-3,8`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let mut i = 0;
        while i < sorted.len() {
            let start = sorted[i];
            while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
                i += 1;
            }
            let sep = if start == sorted[0] { "" } else { "," };
            match sorted[i] {
                end if end == start => write!(f, "{sep}{start}")?,
                end => write!(f, "{sep}{start}-{end}")?,
            }
            i += 1;
        }
        Ok(())
    }
}

/// The CPUs the calling thread may run on, in ascending order.
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain bits; zeroed is the empty set, and the kernel writes
    // at most `size_of::<cpu_set_t>()` bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `CPU_ISSET` reads the set filled above, for CPUs below its size.
    Ok((0..MAX_CPUS).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect())
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    if cpu >= MAX_CPUS {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("CPU {cpu} is out of range")));
    }
    // SAFETY: as in `allowed_cpus`; `CPU_SET` writes within the set for `cpu < MAX_CPUS`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU of each of `workers` workers (`None`: unpinned), given the CPUs the process
/// may run on. A listed CPU outside `allowed` is refused here, at start-up, rather than
/// failing in a worker.
pub fn plan(affinity: &CpuAffinity, workers: usize, allowed: &[usize]) -> Result<Option<Vec<usize>>, AffinityError> {
    let cpus: &[usize] = match affinity {
        CpuAffinity::Off => return Ok(None),
        CpuAffinity::Auto => allowed,
        CpuAffinity::List(list) => {
            if let Some(&cpu) = list.iter().find(|c| !allowed.contains(c)) {
                return Err(AffinityError::NotAllowed { cpu, allowed: CpuList(allowed.to_vec()) });
            }
            list
        }
    };
    if cpus.is_empty() {
        return Err(AffinityError::NoCpu);
    }
    Ok(Some((0..workers).map(|i| cpus[i % cpus.len()]).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CpuAffinity, AffinityError> {
        s.parse()
    }

    #[test]
    fn off_auto_and_lists_parse_in_the_given_order() {
        assert_eq!(parse("off"), Ok(CpuAffinity::Off));
        assert_eq!(parse(" auto "), Ok(CpuAffinity::Auto));
        assert_eq!(parse("3"), Ok(CpuAffinity::List(vec![3])));
        assert_eq!(parse("0-3,8"), Ok(CpuAffinity::List(vec![0, 1, 2, 3, 8])));
        assert_eq!(parse("6,2-3"), Ok(CpuAffinity::List(vec![6, 2, 3])));
        assert_eq!(parse("1 - 2, 5"), Ok(CpuAffinity::List(vec![1, 2, 5])));
        assert_eq!(parse("1023"), Ok(CpuAffinity::List(vec![1023])));
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        assert_eq!(parse(""), Err(AffinityError::Empty));
        assert_eq!(parse("on"), Err(AffinityError::NotANumber("on".into())));
        assert_eq!(parse("1,,2"), Err(AffinityError::NotANumber(String::new())));
        assert_eq!(parse("+1"), Err(AffinityError::NotANumber("+1".into())));
        assert_eq!(parse("-1"), Err(AffinityError::NotANumber(String::new())));
        assert_eq!(parse("1-2-3"), Err(AffinityError::NotANumber("2-3".into())));
        assert_eq!(parse("5-2"), Err(AffinityError::Backwards(5, 2)));
        assert_eq!(parse("1024"), Err(AffinityError::TooHigh(1024)));
        assert_eq!(parse("99999999999999999999999"), Err(AffinityError::TooHigh(usize::MAX)));
        assert_eq!(parse("0-2,2"), Err(AffinityError::Twice(2)));
        assert_eq!(
            AffinityError::NotAllowed { cpu: 9, allowed: CpuList(vec![0, 1, 2, 5, 7, 8]) }.to_string(),
            "CPU 9 is not one this process may run on (allowed: 0-2,5,7-8)"
        );
    }

    #[test]
    fn cpu_lists_print_in_the_kernel_notation() {
        let show = |v: &[usize]| CpuList(v.to_vec()).to_string();
        assert_eq!(show(&[]), "");
        assert_eq!(show(&[4]), "4");
        assert_eq!(show(&[3, 0, 1, 2]), "0-3");
        assert_eq!(show(&[0, 2, 4]), "0,2,4");
        assert_eq!(show(&[1, 2, 3, 7, 9, 10]), "1-3,7,9-10");
    }

    #[test]
    fn workers_take_the_cpus_in_turn_and_wrap_around() {
        let allowed = [0, 1, 4, 5];
        assert_eq!(plan(&CpuAffinity::Off, 3, &allowed), Ok(None));
        assert_eq!(plan(&CpuAffinity::Auto, 3, &allowed), Ok(Some(vec![0, 1, 4])));
        assert_eq!(plan(&CpuAffinity::Auto, 6, &allowed), Ok(Some(vec![0, 1, 4, 5, 0, 1])));
        assert_eq!(plan(&CpuAffinity::List(vec![5, 0]), 3, &allowed), Ok(Some(vec![5, 0, 5])));
        assert_eq!(
            plan(&CpuAffinity::List(vec![0, 2]), 2, &allowed),
            Err(AffinityError::NotAllowed { cpu: 2, allowed: CpuList(allowed.to_vec()) })
        );
        assert_eq!(plan(&CpuAffinity::Auto, 2, &[]), Err(AffinityError::NoCpu));
    }

    #[test]
    fn the_process_may_run_somewhere_and_a_thread_can_be_pinned_there() {
        let allowed = allowed_cpus().unwrap();
        assert!(!allowed.is_empty());
        let last = *allowed.last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(last).unwrap();
            assert_eq!(allowed_cpus().unwrap(), vec![last]);
        })
        .join()
        .unwrap();
        assert!(pin_current_thread(MAX_CPUS).is_err());
    }
}
