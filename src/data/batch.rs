//! A training minibatch as the loop hands it to an engine: which rows, and how they are made
//! on the host (the fused engine) or on a burn device (gathered from the device's copy of the
//! training set, so a step uploads its row indices, not its rows).

use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand::rngs::StdRng;

use super::device::{DeviceCopies, indices, to_tensor};
use super::{Dataset, Matrix};

pub struct Batch<'a> {
    source: &'a Matrix,
    /// The source's device copies, where it has them (a dataset's training rows).
    copies: Option<&'a DeviceCopies>,
    /// Which rows of the source, in order; `None`: all of them as they are.
    rows: Option<&'a [usize]>,
    /// Binarized afresh (dynamic binarization), from the step's stream before anything else
    /// the step draws.
    binarize: bool,
}

impl<'a> Batch<'a> {
    /// Training rows `rows` of `data`, in that order.
    pub fn of(data: &'a Dataset, rows: &'a [usize]) -> Self {
        Batch {
            source: &data.train,
            copies: Some(&data.train_on_device),
            rows: Some(rows),
            binarize: data.dynamic_binarization,
        }
    }

    /// Every row of `m`, as it is (tests and benchmarks that step an engine by hand).
    pub fn whole(m: &'a Matrix) -> Self {
        Batch {
            source: m,
            copies: None,
            rows: None,
            binarize: false,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.map_or(self.source.rows, <[usize]>::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn gathered(&self) -> Matrix {
        match self.rows {
            Some(rows) => self.source.gather(rows),
            None => self.source.clone(),
        }
    }

    /// The rows on the host, binarized where asked: a Bernoulli draw per value, in row-major
    /// order, from `rng`.
    pub fn host(&self, rng: &mut StdRng) -> Matrix {
        let mut x = self.gathered();
        if self.binarize {
            super::bernoulli_sample(&mut x.values, rng);
        }
        x
    }

    /// The rows on `device`, gathered from its copy of the source (uploaded once). Binarized
    /// by comparing with the same uniforms [`Batch::host`] draws (`bernoulli_sample`), so that both give the same
    /// values bit for bit and a resumed run draws what an uninterrupted one does.
    pub fn on(&self, device: &Device, rng: &mut StdRng) -> Tensor<2> {
        let x = match (self.copies, self.rows) {
            (Some(copies), Some(rows)) => copies
                .on(self.source, device)
                .select(0, indices(rows, device)),
            _ => to_tensor(&self.gathered(), device),
        };
        if !self.binarize {
            return x;
        }
        let shape = [self.len(), self.source.cols];
        let u: Vec<f32> = (0..shape[0] * shape[1])
            .map(|_| rng.random::<f32>())
            .collect();
        Tensor::<2>::from_data(TensorData::new(u, shape), device)
            .lower(x)
            .float()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_device_batch_is_the_host_batch_bit_for_bit() {
        let device = Device::flex();
        let values: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).fract()).collect();
        let data = crate::data::Dataset {
            train: Matrix::new(8, 5, values),
            dynamic_binarization: true,
            ..Default::default()
        };
        let rows = [6, 1, 3];
        let batch = Batch::of(&data, &rows);
        let host = batch.host(&mut StdRng::seed_from_u64(9));
        let on = crate::data::device::host(batch.on(&device, &mut StdRng::seed_from_u64(9)));
        assert_eq!(host.values, on);
        assert!(host.values.iter().all(|&v| v == 0.0 || v == 1.0));
        assert!(host.values.contains(&1.0) && host.values.contains(&0.0));
        assert_eq!(data.train_on_device.count(), 1);
    }
}
