//! Non-blocking GPU → host readback: a pair of MAP_READ staging buffers mapped with
//! `map_async` and polled, so an interactive host never waits for the GPU. While both are
//! busy a new request is refused and the caller simply keeps its last values.

use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq)]
enum State {
    Free,
    /// Copy submitted, map requested; the counter orders results.
    Pending(u64),
    Ready(u64),
    Failed(String),
}

struct Slot {
    buf: wgpu::Buffer,
    state: Arc<Mutex<State>>,
}

pub struct Readback {
    slots: Vec<Slot>,
    counter: u64,
}

/// A copy destination handed out by [`Readback::reserve`].
pub struct Reserved {
    slot: usize,
}

impl Readback {
    pub fn new(device: &wgpu::Device, label: &str, bytes: u64) -> Readback {
        let slots = (0..2)
            .map(|_| Slot {
                buf: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes.next_multiple_of(4).max(4),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: Arc::new(Mutex::new(State::Free)),
            })
            .collect();
        Readback { slots, counter: 0 }
    }

    fn state(&self, k: usize) -> State {
        self.slots[k]
            .state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(State::Free)
    }

    /// A free staging buffer to copy into, or None while both are in flight.
    pub fn reserve(&self) -> Option<Reserved> {
        (0..self.slots.len())
            .find(|&k| self.state(k) == State::Free)
            .map(|slot| Reserved { slot })
    }

    pub fn buffer(&self, r: &Reserved) -> &wgpu::Buffer {
        &self.slots[r.slot].buf
    }

    /// Call after the submission holding the copy into `r`'s buffer: requests the map.
    pub fn submitted(&mut self, r: Reserved) {
        self.counter += 1;
        let id = self.counter;
        let slot = &self.slots[r.slot];
        if let Ok(mut s) = slot.state.lock() {
            *s = State::Pending(id);
        }
        let state = slot.state.clone();
        slot.buf
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |res| {
                if let Ok(mut s) = state.lock() {
                    *s = match res {
                        Ok(()) => State::Ready(id),
                        Err(e) => State::Failed(e.to_string()),
                    };
                }
            });
    }

    /// True while a copy is submitted but not yet collected.
    pub fn in_flight(&self) -> bool {
        (0..self.slots.len()).any(|k| self.state(k) != State::Free)
    }

    /// The newest finished readback, if any arrived since the last call (older finished ones
    /// are dropped). Needs `device.poll` to have run for callbacks to fire.
    pub fn take(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut best: Option<(u64, Vec<u8>)> = None;
        let mut err = None;
        for k in 0..self.slots.len() {
            match self.state(k) {
                State::Ready(id) => {
                    let slot = &self.slots[k];
                    let data = slot
                        .buf
                        .slice(..)
                        .get_mapped_range()
                        .map(|v| v.to_vec())
                        .map_err(|e| e.to_string());
                    slot.buf.unmap();
                    *slot.state.lock().map_err(|e| e.to_string())? = State::Free;
                    match data {
                        Ok(d) if best.as_ref().is_none_or(|(b, _)| id > *b) => best = Some((id, d)),
                        Ok(_) => {}
                        Err(e) => err = Some(e),
                    }
                }
                State::Failed(e) => {
                    *self.slots[k].state.lock().map_err(|e| e.to_string())? = State::Free;
                    err = Some(e);
                }
                _ => {}
            }
        }
        match (best, err) {
            (Some((_, d)), _) => Ok(Some(d)),
            (None, Some(e)) => Err(format!("GPU readback failed: {e}")),
            (None, None) => Ok(None),
        }
    }
}
