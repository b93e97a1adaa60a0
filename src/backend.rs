//! Backend selection: burn 0.22 picks the backend from the `Device` at run time.

use burn::tensor::{Device, Tensor};

use crate::spec::BackendKind;

/// Where `backend = "cpu"` trains when the fused engine does not cover the model: flex
/// measured faster than ndarray on the 2-core machine, 5.98 s against 7.12 s for an epoch of
/// the canonical VAE (benches/epoch.rs, README "Backends"), and on the small digits models too.
pub const DEFAULT_CPU: BackendKind = BackendKind::Flex;

/// The burn backend a kind computes on: the fused engine evaluates its models on flex.
pub fn resolve(kind: BackendKind) -> BackendKind {
    match kind {
        BackendKind::Cpu | BackendKind::Fused => DEFAULT_CPU,
        other => other,
    }
}

pub fn name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Cpu => "cpu",
        BackendKind::Fused => "fused",
        BackendKind::Ndarray => "ndarray",
        BackendKind::Flex => "flex",
        BackendKind::Cuda => "cuda",
    }
}

/// The backend a plain device belongs to, by name. The devices this build makes are flex,
/// ndarray and (with the `cuda` feature) CubeCL's CUDA.
pub fn device_name(device: &Device) -> &'static str {
    use burn_dispatch::DispatchDevice;
    match device.as_dispatch() {
        DispatchDevice::Flex(_) => "flex",
        DispatchDevice::NdArray(_) => "ndarray",
        #[allow(unreachable_patterns)]
        _ => "cuda",
    }
}

/// CPU cores this process may use (its affinity mask and cgroup quota, as Slurm and
/// Kubernetes set them).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The plain (inference) device for a backend; `.autodiff()` gives the training one.
/// A device that cannot run (no GPU, no driver) is an error here, not a panic later.
#[allow(deprecated)] // burn-ndarray is deprecated upstream but is the faster CPU backend for us
pub fn device(kind: BackendKind, index: usize) -> anyhow::Result<Device> {
    let device = match resolve(kind) {
        BackendKind::Ndarray => Device::ndarray(),
        BackendKind::Flex => Device::flex(),
        BackendKind::Cuda => cuda_device(index)?,
        BackendKind::Cpu | BackendKind::Fused => unreachable!("resolved above"),
    };
    probe(&device, kind, index)?;
    Ok(device)
}

/// Whether this build and machine can train on CUDA device 0 (what `runner plan` tells a
/// spec that asks for the CPU).
pub fn cuda_usable() -> bool {
    cfg!(feature = "cuda") && device(BackendKind::Cuda, 0).is_ok()
}

/// How a CUDA run computes, as the plan says it.
pub const CUDA_ROUTE: &str = "burn's autodiff on CUDA with kernel fusion and autotuned kernels; the training set uploaded once per process, each step gathering its rows on the device and its sums read back once per epoch and checkpoint";

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> anyhow::Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> anyhow::Result<Device> {
    anyhow::bail!(
        "backend \"cuda\" is not compiled in; rebuild with `cargo build --release --features cuda`"
    )
}

/// Runs one tiny operation; backends that cannot start panic, which we turn into an error.
fn probe(device: &Device, kind: BackendKind, index: usize) -> anyhow::Result<()> {
    let device = device.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0], &device);
        t.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous);
    match outcome {
        Ok(v) if (v - 3.0).abs() < 1e-6 => Ok(()),
        Ok(v) => anyhow::bail!("backend {} computed 1 + 2 = {v}", name(kind)),
        // What a backend panics with here is its own internals ("called `Result::unwrap()`
        // on an `Err` value: RecvError" from a CUDA runtime thread), of no use to a user.
        Err(_) if resolve(kind) == BackendKind::Cuda => anyhow::bail!(
            "backend \"cuda\" cannot start on this machine: no usable NVIDIA GPU and driver (libcuda) for CUDA device {index}"
        ),
        Err(_) => anyhow::bail!("backend {} cannot start on this machine", name(kind)),
    }
}
