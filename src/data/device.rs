//! Host rows on a burn device and back: the uploads and the read-backs of every burn route.
//!
//! A GPU step is ~1 ms, and a read from the device waits for all the work queued before it,
//! so the training loop must not read after every step. Every read of a tensor's values in
//! aevb goes through [`host`], which counts the reads of the calling thread ([`reads`]), so
//! that a test can hold the loop to that.

use std::cell::Cell;
use std::sync::Mutex;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::Matrix;

thread_local! {
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// Reads a tensor back to the host as f32 (and counts the read).
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    READS.with(|r| r.set(r.get() + 1));
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

/// Reads from a device made by [`host`] on this thread so far.
pub fn reads() -> u64 {
    READS.with(Cell::get)
}

/// Uploads rows to `device`.
pub fn to_tensor(m: &Matrix, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(m.values.clone(), [m.rows, m.cols]), device)
}

/// Row indices as an index tensor on `device` (what `Tensor::select` takes).
pub fn indices(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let rows: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let n = rows.len();
    Tensor::from_data(TensorData::new(rows, [n]), device)
}

/// A matrix's copies on the devices it was asked for, each uploaded once and shared by every
/// run of the process that holds the same dataset (the runner shares one `Arc<Dataset>` per
/// data config). A clone starts with none.
#[derive(Default)]
pub struct DeviceCopies(Mutex<Vec<(Device, Tensor<2>)>>);

impl DeviceCopies {
    /// `m` on `device`, uploaded on the first call for that device.
    pub fn on(&self, m: &Matrix, device: &Device) -> Tensor<2> {
        let mut copies = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, t)) = copies.iter().find(|(d, _)| d == device) {
            return t.clone();
        }
        let t = to_tensor(m, device);
        copies.push((device.clone(), t.clone()));
        t
    }

    /// How many devices hold a copy.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Clone for DeviceCopies {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for DeviceCopies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceCopies({} devices)", self.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_uploaded_once_per_device_and_gathers_the_host_rows() {
        let device = Device::flex();
        let m = Matrix::new(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let copies = DeviceCopies::default();
        let first = copies.on(&m, &device);
        let _again = copies.on(&m, &device);
        assert_eq!(copies.count(), 1);
        let before = reads();
        let rows = host(first.select(0, indices(&[2, 0], &device)));
        assert_eq!(rows, m.gather(&[2, 0]).values);
        assert_eq!(reads(), before + 1);
        // A clone (another dataset) starts empty.
        assert_eq!(copies.clone().count(), 0);
    }
}
