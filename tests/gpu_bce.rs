//! GPU binary cross-entropy on logits against the CPU reference: every reduction and every
//! optional input, on sizes off the 64-element workgroups and 1,024-element chunks, with NaN in
//! every ignored position; bit-reproducible reductions; errors.

use wgrnn::core::{SplitMix64, Tensor};
use wgrnn::cpu::{
    BceInput, binary_cross_entropy_with_logits as bce,
    binary_cross_entropy_with_logits_backward as bce_backward,
};
use wgrnn::gpu::{self, Context, GpuBceInput, GpuTensor, upload_mask};
use wgrnn::{Error, Reduction};

use crate::common::{Tolerance, assert_close};
use crate::gpu::{blockings, ctx};
use crate::gpu_rnn::GPU_F32;

/// Gradients against the f64 reference, relative to their unit `u` (dloss / count, dloss or
/// the largest |dlossᵢ|): each is a few f32 operations on O(1) factors times `u`, so a few ulps
/// of `u` near zero and 1e-4 relative elsewhere, whatever the count divides them by.
fn grad_tol(u: f64) -> Tolerance {
    Tolerance {
        abs: 1e-6 * u,
        rel: 1e-4,
    }
}

const REDUCTIONS: [Reduction; 3] = [Reduction::None, Reduction::Mean, Reduction::Sum];

/// Host inputs of one case: `[rows, classes]` logits (every 16th ±100 or ±10⁴), soft and hard
/// targets, weights, positive weights, a mask with about a quarter ignored, NaN in every
/// ignored logit, target and weight.
struct Host {
    x: Tensor<f64>,
    y: Tensor<f64>,
    w: Tensor<f64>,
    pw: Tensor<f64>,
    mask: Tensor<bool>,
}

fn host(rng: &mut SplitMix64, shape: &[usize]) -> Host {
    let n: usize = shape.iter().product();
    let mask = Tensor::from_fn(shape.to_vec(), |_| rng.below(4) != 0).unwrap();
    let mut filled = |f: &mut dyn FnMut(&mut SplitMix64, usize) -> f64| {
        let v = (0..n)
            .map(|i| if mask.data()[i] { f(rng, i) } else { f64::NAN })
            .collect();
        Tensor::new(shape.to_vec(), v).unwrap()
    };
    let x = filled(&mut |r, i| match i % 16 {
        5 => [100.0, -100.0, 1e4, -1e4][(i / 16) % 4],
        _ => r.uniform(-6.0, 6.0),
    });
    let y = filled(&mut |r, i| {
        if i % 3 == 0 {
            r.uniform(0.0, 1.0)
        } else {
            r.below(2) as f64
        }
    });
    let w = filled(&mut |r, _| r.uniform(0.25, 2.0));
    let c = *shape.last().unwrap();
    let pw = Tensor::from_fn([c], |_| rng.uniform(0.5, 3.0)).unwrap();
    Host { x, y, w, pw, mask }
}

/// The device copies of a case's inputs.
struct Device {
    x: GpuTensor,
    y: GpuTensor,
    w: GpuTensor,
    pw: GpuTensor,
    mask: GpuTensor,
}

impl Device {
    fn new(ctx: &Context, h: &Host) -> Self {
        let up = |t: &Tensor<f64>| ctx.upload(&t.cast()).unwrap();
        Device {
            x: up(&h.x),
            y: up(&h.y),
            w: up(&h.w),
            pw: up(&h.pw),
            mask: upload_mask(ctx, &h.mask).unwrap(),
        }
    }
}

/// The optional inputs of one variant: (weight, pos_weight, mask).
const OPTIONS: [(bool, bool, bool); 3] = [
    (true, true, true),
    (false, false, false),
    (false, true, true),
];

/// Loss, count and gradient on the device against the f64 reference for every reduction and
/// several combinations of the optional inputs. Without a mask the NaN stay out by replacing
/// the ignored elements' inputs with finite values.
#[test]
fn gpu_bce_matches_cpu_on_odd_sizes() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(31);
    for shape in [
        vec![1],
        vec![3],
        vec![17],
        vec![65],
        vec![129, 3],
        vec![3, 129 * 8],
        vec![129 * 40, 7],
    ] {
        let mut h = host(&mut rng, &shape);
        for (use_w, use_pw, use_mask) in OPTIONS {
            if !use_mask {
                for t in [&mut h.x, &mut h.y, &mut h.w] {
                    t.data_mut()
                        .iter_mut()
                        .filter(|v| v.is_nan())
                        .for_each(|v| *v = 0.5);
                }
            }
            let d = Device::new(ctx, &h);
            let mut cpu = BceInput::new(&h.x, &h.y);
            let mut dev = GpuBceInput::new(&d.x, &d.y);
            if use_w {
                (cpu, dev) = (cpu.weight(&h.w), dev.weight(&d.w));
            }
            if use_pw {
                (cpu, dev) = (cpu.pos_weight(&h.pw), dev.pos_weight(&d.pw));
            }
            if use_mask {
                (cpu, dev) = (cpu.mask(&h.mask), dev.mask(&d.mask));
            }
            for r in REDUCTIONS {
                let what = format!("{shape:?} w {use_w} pw {use_pw} mask {use_mask} {r:?}");
                check_case(ctx, &what, cpu, dev, r, &mut rng);
            }
        }
    }
}

/// One case and reduction: the loss (f32 tolerance), the count (exact) and the gradient for a
/// random dloss.
fn check_case(
    ctx: &Context,
    what: &str,
    cpu: BceInput<f64>,
    dev: GpuBceInput,
    r: Reduction,
    rng: &mut SplitMix64,
) {
    let want = bce(cpu, r).unwrap();
    let got = gpu::binary_cross_entropy_with_logits(ctx, dev, r).unwrap();
    assert_eq!(got.reduction(), r);
    let loss = ctx.read(&got.loss).unwrap();
    assert_eq!(loss.shape(), want.loss.shape(), "{what}: loss shape");
    assert_close(
        &format!("{what}: loss"),
        loss.data(),
        want.loss.data(),
        GPU_F32,
    );
    let count = ctx.read_u32(&got.count).unwrap();
    assert_eq!(count.data(), [want.count as u32], "{what}: count");
    let dloss = Tensor::from_fn(want.loss.shape().to_vec(), |_| rng.uniform(-2.0, 2.0)).unwrap();
    let want_g = bce_backward(cpu, r, &dloss).unwrap();
    let gd = ctx.upload(&dloss.cast()).unwrap();
    let g = gpu::binary_cross_entropy_with_logits_backward(ctx, dev, &got, &gd).unwrap();
    let unit = match r {
        Reduction::Mean => dloss.data()[0].abs() / want.count.max(1) as f64,
        _ => dloss.data().iter().fold(0.0f64, |m, v| m.max(v.abs())),
    };
    let g = ctx.read(&g).unwrap();
    assert_close(
        &format!("{what}: dlogits"),
        g.data(),
        want_g.data(),
        grad_tol(unit),
    );
}

/// The reduced loss is bit-identical between identical calls; with every element ignored it
/// is 0 with count 0 and a zero gradient, never NaN.
#[test]
fn gpu_bce_is_reproducible_and_zero_when_all_ignored() {
    let _watch = crate::validation::watch();
    let ctx = ctx();
    let mut rng = SplitMix64::new(32);
    let h = host(&mut rng, &[77, 65]);
    let d = Device::new(ctx, &h);
    let input = GpuBceInput::new(&d.x, &d.y)
        .weight(&d.w)
        .pos_weight(&d.pw)
        .mask(&d.mask);
    for r in [Reduction::Mean, Reduction::Sum] {
        let a = gpu::binary_cross_entropy_with_logits(ctx, input, r).unwrap();
        let b = gpu::binary_cross_entropy_with_logits(ctx, input, r).unwrap();
        let (a, b) = (ctx.read(&a.loss).unwrap(), ctx.read(&b.loss).unwrap());
        assert_eq!(
            a.data()[0].to_bits(),
            b.data()[0].to_bits(),
            "{r:?}: {a:?} {b:?}"
        );
    }
    let none = upload_mask(ctx, &Tensor::full([77, 65], false).unwrap()).unwrap();
    let ignored = input.mask(&none);
    let one = ctx.upload(&Tensor::full([], 1.0).unwrap()).unwrap();
    for r in [Reduction::Mean, Reduction::Sum] {
        let out = gpu::binary_cross_entropy_with_logits(ctx, ignored, r).unwrap();
        assert_eq!(ctx.read(&out.loss).unwrap().data(), [0.0], "{r:?}");
        assert_eq!(ctx.read_u32(&out.count).unwrap().data(), [0], "{r:?}");
        let g = gpu::binary_cross_entropy_with_logits_backward(ctx, ignored, &out, &one).unwrap();
        assert!(
            ctx.read(&g).unwrap().data().iter().all(|&v| v == 0.0),
            "{r:?}"
        );
    }
}

/// Shapes, dtypes and contexts the op checks are errors naming the argument, with the op's
/// CPU name.
#[test]
fn gpu_bce_errors() {
    let _watch = crate::validation::watch();
    let [a, b, _] = blockings();
    const OP: &str = "binary_cross_entropy_with_logits";
    const BOP: &str = "binary_cross_entropy_with_logits_backward";
    let x = a.zeros(&[2, 3]).unwrap();
    let short = a.zeros(&[2, 2]).unwrap();
    let pw = a.zeros(&[2]).unwrap();
    let scalar = a.zeros(&[]).unwrap();
    let mask_f32 = a.zeros(&[2, 3]).unwrap();
    let mask_short = upload_mask(a, &Tensor::full([3, 2], true).unwrap()).unwrap();
    let ids = a.upload_u32(&[2, 3], &[0; 6]).unwrap();
    let foreign = b.zeros(&[2, 3]).unwrap();
    let cases: [(GpuBceInput, &str); 8] = [
        (GpuBceInput::new(&x, &short), "targets"),
        (GpuBceInput::new(&x, &ids), "targets"),
        (GpuBceInput::new(&x, &x).weight(&short), "weight"),
        (GpuBceInput::new(&x, &x).mask(&mask_f32), "mask"),
        (GpuBceInput::new(&x, &x).mask(&mask_short), "mask"),
        (GpuBceInput::new(&x, &x).pos_weight(&pw), "pos_weight"),
        (
            GpuBceInput::new(&scalar, &scalar).pos_weight(&pw),
            "pos_weight",
        ),
        (GpuBceInput::new(&x, &foreign), "targets"),
    ];
    let good = gpu::binary_cross_entropy_with_logits(a, GpuBceInput::new(&x, &x), Reduction::Mean);
    let good = good.unwrap();
    for (input, arg) in cases {
        let e = gpu::binary_cross_entropy_with_logits(a, input, Reduction::Mean).unwrap_err();
        assert_eq!(e.op(), Some(OP), "{e}");
        assert!(e.to_string().contains(&format!("`{arg}`")), "{arg}: {e}");
        let e = gpu::binary_cross_entropy_with_logits_backward(a, input, &good, &scalar);
        let e = e.unwrap_err();
        assert_eq!(e.op(), Some(BOP), "{e}");
        assert!(e.to_string().contains(&format!("`{arg}`")), "{arg}: {e}");
    }
    let input = GpuBceInput::new(&x, &x);
    let e = gpu::binary_cross_entropy_with_logits_backward(a, input, &good, &x).unwrap_err();
    assert_eq!(e, Error::shape(BOP, "dloss", &[], &[2, 3]));
    let none = gpu::binary_cross_entropy_with_logits(a, input, Reduction::None).unwrap();
    let e = gpu::binary_cross_entropy_with_logits_backward(a, input, &none, &scalar).unwrap_err();
    assert_eq!(e, Error::shape(BOP, "dloss", &[2, 3], &[]));
    let e = gpu::binary_cross_entropy_with_logits(b, input, Reduction::Sum).unwrap_err();
    assert!(matches!(e, Error::ForeignContext { op: OP, .. }), "{e}");
    // A forward result whose count was replaced by another tensor.
    let mut bad = good.clone();
    bad.count = a.zeros(&[1]).unwrap();
    let e = gpu::binary_cross_entropy_with_logits_backward(a, input, &bad, &scalar).unwrap_err();
    assert!(e.to_string().contains("`forward.count`"), "{e}");
    // u32 weights are refused like u32 targets.
    let pw_ids = a.upload_u32(&[3], &[1; 3]).unwrap();
    for (input, arg) in [
        (input.weight(&ids), "weight"),
        (input.pos_weight(&pw_ids), "pos_weight"),
    ] {
        let e = gpu::binary_cross_entropy_with_logits(a, input, Reduction::Sum).unwrap_err();
        assert!(e.to_string().contains(&format!("`{arg}`")), "{arg}: {e}");
        assert!(e.to_string().contains("must be f32"), "{arg}: {e}");
    }
}
