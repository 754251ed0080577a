//! What the device's memory holds and has free: on the CPU from Linux's `/proc` (and the
//! cgroup's limit when one is set), on a GPU from the CUDA driver (builds with the `cuda`
//! feature). Every reader answers `None` where the figure is unknown (another OS, no driver).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use candle_core::Device;

/// How often [`PeakWatch`] reads a GPU's memory.
const WATCH_INTERVAL: Duration = Duration::from_millis(2);

/// Free memory where a run allocates: the compute device and, for a GPU, the host (captured
/// rows are copied to host memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeMemory {
    /// Bytes free on the compute device (`MemAvailable` for the CPU, the driver's free memory
    /// for a GPU), if known.
    pub device: Option<u64>,
    /// Bytes available in host memory, if known (the same figure as `device` on the CPU).
    pub host: Option<u64>,
}

/// Free memory of `device` and of the host.
pub fn free_memory(device: &Device) -> FreeMemory {
    let host = host_available_bytes();
    if device.is_cpu() {
        FreeMemory { device: host, host }
    } else {
        FreeMemory {
            device: gpu_free_and_total(device).map(|(free, _)| free),
            host,
        }
    }
}

/// Bytes this process holds on `device`: the resident set (`VmRSS`) on the CPU, the memory in
/// use on the whole GPU (the driver's total minus free) on a GPU.
pub fn memory_in_use(device: &Device) -> Option<u64> {
    if device.is_cpu() {
        proc_status_bytes("VmRSS:")
    } else {
        gpu_free_and_total(device).map(|(free, total)| total.saturating_sub(free))
    }
}

/// Peak resident memory of this process (`VmHWM`, Linux).
pub fn peak_resident_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// Asks Linux to restart `VmHWM` from the current resident size (`clear_refs` value 5); returns
/// whether it could (where it cannot, the peak stays the one since the process started).
pub fn reset_peak_resident() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak memory in use on a GPU during a run, read by a thread every 2 ms until
/// [`PeakWatch::finish`]: the driver tells the memory in use now, not its peak, and a prefill's
/// largest buffers come and go between two readings after it.
pub struct PeakWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<u64>>,
}

impl PeakWatch {
    /// Starts watching `device`; `None` on the CPU (whose peak is `VmHWM`, see
    /// [`peak_resident_bytes`]) or when the thread cannot start.
    pub fn start(device: &Device) -> Option<Self> {
        if device.is_cpu() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let device = device.clone();
        let thread = std::thread::Builder::new()
            .name("judgeq-memory-watch".to_owned())
            .spawn(move || {
                let mut peak: Option<u64> = None;
                loop {
                    if let Some(now) = memory_in_use(&device) {
                        peak = Some(peak.map_or(now, |p| p.max(now)));
                    }
                    if flag.load(Ordering::Relaxed) {
                        return peak;
                    }
                    std::thread::sleep(WATCH_INTERVAL);
                }
            })
            .ok()?;
        Some(Self { stop, thread })
    }

    /// Stops watching; the largest reading, if any.
    pub fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}

/// A line of `/proc/self/status` in bytes (the file gives kB).
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, field).map(|kib| kib * 1024)
}

/// Memory a new allocation can take without swapping: `MemAvailable`, lowered to what the
/// cgroup (v2) still allows when it sets a limit.
fn host_available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = kib_field(&meminfo, "MemAvailable:")? * 1024;
    Some(match cgroup_headroom() {
        Some(headroom) => available.min(headroom),
        None => available,
    })
}

/// `memory.max - memory.current` of this process's cgroup (v2), when it has a limit.
fn cgroup_headroom() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    cgroup_limit(&read("memory.max")?, &read("memory.current")?)
}

/// Headroom under a cgroup limit from the text of `memory.max` (`max` when unlimited) and
/// `memory.current`.
fn cgroup_limit(max: &str, current: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// The number of a `Field:   123 kB` line.
fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `(free, total)` bytes of a CUDA device, from the driver.
#[cfg(feature = "cuda")]
fn gpu_free_and_total(device: &Device) -> Option<(u64, u64)> {
    let cuda = device.as_cuda_device().ok()?;
    let (free, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
    Some((free as u64, total as u64))
}

/// Without the `cuda` feature there is no GPU to ask.
#[cfg(not(feature = "cuda"))]
fn gpu_free_and_total(_device: &Device) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_fields_are_read_by_name() {
        let meminfo =
            "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   19000000 kB\n";
        assert_eq!(kib_field(meminfo, "MemAvailable:"), Some(19_000_000));
        assert_eq!(kib_field(meminfo, "MemFree:"), Some(1000));
        assert_eq!(kib_field(meminfo, "SwapTotal:"), None);
        assert_eq!(kib_field("MemAvailable: lots kB", "MemAvailable:"), None);
    }

    #[test]
    fn a_cgroup_limit_leaves_its_headroom_and_max_means_none() {
        assert_eq!(
            cgroup_limit("8589934592\n", "2147483648\n"),
            Some(6_442_450_944)
        );
        assert_eq!(cgroup_limit("100\n", "300\n"), Some(0));
        assert_eq!(cgroup_limit("max\n", "2147483648\n"), None);
    }

    #[test]
    fn the_cpu_reports_its_own_memory_on_linux() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let free = free_memory(&Device::Cpu);
        assert!(free.device.is_some_and(|b| b > 0));
        assert_eq!(free.device, free.host);
        // This test process holds at least a megabyte, and its peak is at least that.
        let rss = memory_in_use(&Device::Cpu).unwrap();
        assert!(rss > 1 << 20, "{rss}");
        assert!(peak_resident_bytes().unwrap() >= rss / 2);
        // The CPU's peak is VmHWM: nothing to watch.
        assert!(PeakWatch::start(&Device::Cpu).is_none());
    }
}
