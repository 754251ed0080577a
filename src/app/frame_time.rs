//! A rolling readout of how long the app's own frame code takes.

use std::collections::VecDeque;
use std::time::Duration;

/// Frames kept for the statistics.
const WINDOW: usize = 120;

/// Recent frame times and their summary.
#[derive(Clone, Debug, Default)]
pub struct FrameTimes {
    recent: VecDeque<Duration>,
}

/// Summary of the recent frames.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameStats {
    /// Frames summarised.
    pub frames: usize,
    /// Mean frame time, milliseconds.
    pub mean_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// Slowest frame, milliseconds.
    pub max_ms: f64,
}

impl FrameTimes {
    /// Records one frame.
    pub fn record(&mut self, frame: Duration) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(frame);
    }

    /// Forgets the recorded frames.
    pub fn clear(&mut self) {
        self.recent.clear();
    }

    /// Statistics of the recent frames, `None` before the first.
    pub fn stats(&self) -> Option<FrameStats> {
        if self.recent.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = self.recent.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let frames = ms.len();
        let p95_index = ((frames as f64 * 0.95).ceil() as usize).clamp(1, frames) - 1;
        Some(FrameStats {
            frames,
            mean_ms: ms.iter().sum::<f64>() / frames as f64,
            p95_ms: ms.get(p95_index).copied().unwrap_or_default(),
            max_ms: ms.last().copied().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_summarise_the_last_window() {
        let mut t = FrameTimes::default();
        assert!(t.stats().is_none());
        for ms in 1..=200u64 {
            t.record(Duration::from_millis(ms));
        }
        let s = t.stats().unwrap();
        assert_eq!(s.frames, WINDOW);
        // Frames 81..=200 remain.
        assert!((s.mean_ms - 140.5).abs() < 1e-9);
        assert!((s.max_ms - 200.0).abs() < 1e-9);
        assert!((s.p95_ms - 194.0).abs() < 1e-9);
    }
}
