//! The parameter block of every kernel, declared once for both sides: [`uniforms!`] writes
//! the `#[repr(C)]` struct the host uploads and the WGSL declaration the shader registry puts
//! in place of the file's `{{Name}}` marker, field for field. One module per shader file.

/// Declares uniform parameter blocks of scalar fields (u32, f32) once, for both sides: the
/// `#[repr(C)]` Rust struct the host uploads and its WGSL declaration (`NAME::WGSL`), field for
/// field, each field's doc comment above it as a WGSL comment.
macro_rules! uniforms {
    ($(
        $(#[doc = $doc:literal])*
        struct $name:ident {
            $( $(#[doc = $fdoc:literal])* $field:ident: $ty:ident, )*
        }
    )*) => {$(
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $( $(#[doc = $fdoc])* pub(crate) $field: $ty, )*
        }

        impl $name {
            /// The block as the shader registry places it.
            pub(crate) const BLOCK: $crate::runtime::uniforms::Block = $crate::runtime::uniforms::Block {
                name: stringify!($name),
                wgsl: Self::WGSL,
                size: std::mem::size_of::<Self>(),
            };

            /// The WGSL declaration of this block.
            pub(crate) const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $( $("    //", $fdoc, "\n",)* "    ", stringify!($field), ": ", stringify!($ty), ",\n", )*
                "}\n"
            );
        }
    )*};
}

/// A parameter block as the shader registry places it: its WGSL fills the file's marker
/// `{{name}}`; `size` is the Rust struct's, which the registry's tests compare with naga's
/// layout of the WGSL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub(crate) name: &'static str,
    pub(crate) wgsl: &'static str,
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the registry's layout test")
    )]
    pub(crate) size: usize,
}

/// cell.wgsl (every recurrent cell).
pub(crate) mod cell {
    uniforms! {
        /// The forward cell kernels' parameters (cell.wgsl `p`).
        struct StepParams {
            batch: u32,
            hidden: u32,
            /// The step (the step count, for `fwd_seq`).
            step: u32,
            /// Rows per block of the split steps' h windows (32; 16, 8, 4 for small B).
            win_rows: u32,
            /// y[t, b, d * H + j] at d * H + t * y_rs_t + b * y_rs_b + j.
            y_rs_t: u32,
            y_rs_b: u32,
            /// Partial products per accumulator in `fpart` (`fwd_split_cell`).
            splits: u32,
            /// 1: training, write the tape.
            save: u32,
            /// Tape offsets (floats): activated gates [T*B, G*H], h before the step [T*B, H],
            tape_gates: u32,
            tape_hprev: u32,
            /// and the cell's own: LSTM c after and before the step, GRU W_hn h + b_hn [T*B, H];
            /// Elman: 1 for relu.
            extra1: u32,
            extra2: u32,
            /// Per-direction strides (floats; vec4 slots for w) of gi, the packed W_hh and the tape.
            gi_dir: u32,
            w_dir: u32,
            tape_dir: u32,
            _pad_dir: u32,
        }

        /// The reverse cell kernels' parameters (cell.wgsl `bp`).
        struct BackParams {
            batch: u32,
            hidden: u32,
            /// The reverse step (the step count, for `bwd_seq`).
            step: u32,
            /// Rows per block of a two-phase cell's split steps' window (as StepParams').
            win_rows: u32,
            /// dy[t, b, d * H + j] at d * H + t * d_rs_t + b * d_rs_b + j.
            d_rs_t: u32,
            d_rs_b: u32,
            _pad_d: u32,
            /// Which dstate slot holds the carries coming in.
            parity: u32,
            /// Tape offsets, as in StepParams.
            tape_gates: u32,
            tape_hprev: u32,
            extra1: u32,
            extra2: u32,
            /// 1: the final pass, producing dh0 (and dc0), no gate gradients.
            last: u32,
            /// Offset of the recurrent-side gate gradients in dg (GRU: rows * 3H; else 0).
            dgh_off: u32,
            _pad_z: u32,
            /// Partial products per row in `part` (`bwd_split_cell`).
            splits: u32,
            /// Per-direction strides (vec4 slots; floats) of the packed W_hh, the tape and dg.
            wt_dir: u32,
            tape_dir: u32,
            dg_dir: u32,
            _pad_dir: u32,
        }
    }
}

/// attention.wgsl.
pub(crate) mod attention {
    uniforms! {
        /// The parameters of attention.wgsl's `AttnParams` kernels.
        struct AttnParams {
            batch: u32,
            tq: u32,
            tk: u32,
            /// length of the vectors the score compares (Dq, or A for additive)
            width: u32,
            dv: u32,
            additive: u32,
            scale: f32,
            /// attn_dside: 0 query side, 1 key side
            side: u32,
            /// attn_dsoftmax: 1 if an upstream dweights is bound
            has_dw: u32,
            _pad0: u32,
            _pad1: u32,
            _pad2: u32,
        }

        /// The parameters of attention.wgsl's `BmmParams` kernels.
        struct BmmParams {
            m: u32,
            n: u32,
            k: u32,
            batch: u32,
            a_b: u32,
            a_m: u32,
            a_k: u32,
            b_b: u32,
            b_k: u32,
            b_n: u32,
            c_b: u32,
            c_m: u32,
            c_n: u32,
            k_by_len: u32,
            scale: f32,
            _pad: u32,
        }
    }
}

/// bce.wgsl.
pub(crate) mod bce {
    uniforms! {
        /// The parameters of every kernel of bce.wgsl.
        struct BceParams {
            /// elements
            n: u32,
            /// pos_weight's length, the logits' last axis (1 without pos_weight)
            classes: u32,
            /// 1 where the optional tensor is bound (a stand-in is bound otherwise)
            has_weight: u32,
            has_pos_weight: u32,
            has_mask: u32,
            /// 0 none, 1 mean, 2 sum
            reduction: u32,
            /// chunks of 1,024 elements, ceil(n / 1024)
            groups: u32,
            _pad: u32,
        }
    }
}

/// dropout.wgsl.
pub(crate) mod dropout {
    uniforms! {
        /// The parameters of dropout.wgsl's `dropout_apply`.
        struct DropoutParams {
            /// the elements written: base .. base + n
            n: u32,
            /// the end of the blocks of four elements they touch, ceil((base + n) / 4)
            blocks: u32,
            /// the Philox key: the seed's low and high 32 bits
            seed_lo: u32,
            seed_hi: u32,
            /// the third counter word
            stream: u32,
            /// an element is dropped where its word is below this
            threshold: u32,
            /// 1 / (1 - p)
            scale: f32,
            /// the first element written (a chunk of a tensor's rows), indexed in the tensor
            base: u32,
        }
    }
}

/// elementwise.wgsl.
pub(crate) mod elementwise {
    uniforms! {
        /// The parameters of elementwise.wgsl's `AxpbyParams` kernels.
        struct AxpbyParams {
            n: u32,
            a: f32,
            b: f32,
            _pad: u32,
        }

        /// The parameters of elementwise.wgsl's `strided_copy`: element e of n is r of block
        /// o = e / chunk, read at src_off + o * src_stride + r, written at
        /// dst_off + o * dst_stride + r.
        struct StridedParams {
            n: u32,
            chunk: u32,
            src_off: u32,
            src_stride: u32,
            dst_off: u32,
            dst_stride: u32,
            _pad0: u32,
            _pad1: u32,
        }
    }
}

/// embedding.wgsl.
pub(crate) mod embedding {
    uniforms! {
        /// The parameters of embedding.wgsl's `GatherParams` kernels.
        struct GatherParams {
            /// number of ids
            rows: u32,
            /// D
            dim: u32,
            /// V
            vocab: u32,
            _pad: u32,
        }

        /// The parameters of embedding.wgsl's `ScatterParams` kernels.
        struct ScatterParams {
            /// this dispatch covers segments first .. first + segments
            segments: u32,
            dim: u32,
            accumulate: u32,
            first: u32,
        }
    }
}

/// loss.wgsl.
pub(crate) mod loss {
    uniforms! {
        /// The parameters of loss.wgsl's `RowParams` kernels.
        struct RowParams {
            rows: u32,
            classes: u32,
            _pad0: u32,
            _pad1: u32,
        }

        /// The parameters of loss.wgsl's `BackParams` kernels.
        struct BackParams {
            rows: u32,
            classes: u32,
            dloss: f32,
            _pad: u32,
        }
    }
}

/// matmul.wgsl.
pub(crate) mod matmul {
    uniforms! {
        /// The parameters of matmul.wgsl's `PackParams` kernels.
        struct PackParams {
            /// Logical matrix A(m, k) = src[src_off + (m / m_inner) * s_outer + (m % m_inner) * s_inner + k * s_k]
            /// M
            rows: u32,
            /// K
            cols: u32,
            /// padded row length of dst (multiple of 8, >= M)
            ld: u32,
            m_inner: u32,
            s_inner: u32,
            s_outer: u32,
            s_k: u32,
            src_off: u32,
            /// rows per panel: dst[(m / pr) * cols * pr + k * pr + m % pr]; pr = ld is
            /// the plain layout dst[k * ld + m]
            pr: u32,
            /// added to every dst index
            dst_off: u32,
            /// `pack_kmajor_masked` only: the sequence row q (m, or k when mask_on_k) is step t of
            /// sequence s, q = t * seq_n + s (seq_outer = 0) or q = s * seq_n + t (seq_outer = 1), and
            /// holds data only where t < pack_len[s].
            mask_on_k: u32,
            seq_n: u32,
            seq_outer: u32,
            _pad0: u32,
            _pad1: u32,
            _pad2: u32,
        }

        /// The parameters of matmul.wgsl's `GemmParams` kernels.
        struct GemmParams {
            m: u32,
            n: u32,
            k: u32,
            /// row length of At in floats (multiple of 8)
            lda: u32,
            /// row length of Bt in floats (multiple of 8)
            ldb: u32,
            /// C[m, n] is at c_off + m * c_rs + n * c_cs (see c_inner)
            c_rs: u32,
            c_cs: u32,
            c_off: u32,
            /// 1: C += product, 0: C = product
            accumulate: u32,
            /// 1: add bias[n]
            has_bias: u32,
            /// rows decompose as m = m1 * c_inner + m0: C[m, n] at
            c_inner: u32,
            /// c_off + m1 * c_rs_outer + m0 * c_rs + n * c_cs
            c_rs_outer: u32,
            /// `gemm_panel` only:
            /// the first row of the window's first panel
            m0: u32,
            /// the first k of this chunk (a row of Bt)
            k0: u32,
            /// vec4 between the window's panels
            a_stride: u32,
            _pad: u32,
        }

        /// The parameters of matmul.wgsl's `SumParams` kernels.
        struct SumParams {
            rows: u32,
            cols: u32,
            accumulate: u32,
            src_off: u32,
        }
    }
}

/// optim.wgsl.
pub(crate) mod optim {
    uniforms! {
        /// The parameters of optim.wgsl's `StepParams` kernels.
        struct StepParams {
            n: u32,
            /// 0 SGD, 1 Adam, 2 RMSprop
            kind: u32,
            /// 1 on the first step (SGD momentum buffer starts at g)
            first: u32,
            /// bit 0 nesterov, bit 1 decoupled weight decay (AdamW), bit 2 momentum on
            flags: u32,
            lr: f32,
            /// SGD momentum | Adam beta1 | RMSprop alpha
            a: f32,
            /// SGD dampening | Adam beta2 | RMSprop momentum
            b: f32,
            eps: f32,
            wd: f32,
            /// Adam: 1 - beta1^t
            bc1: f32,
            /// Adam: sqrt(1 - beta2^t)
            bc2_sqrt: f32,
            _pad: u32,
        }

        /// The parameters of optim.wgsl's `SumParams` kernels.
        struct SumParams {
            n: u32,
            slot: u32,
            /// the segment's first element
            off: u32,
            _pad1: u32,
        }

        /// The parameters of optim.wgsl's `ClipParams` kernels.
        struct ClipParams {
            count: u32,
            max_norm: f32,
            _pad0: u32,
            _pad1: u32,
        }
    }
}

/// pack.wgsl and pack_f16.wgsl.
pub(crate) mod pack {
    uniforms! {
        /// The parameters of pack.wgsl's `GateParams` kernels.
        struct GateParams {
            /// H
            hidden: u32,
            /// G: 4 (LSTM), 3 (GRU), 1 (Elman)
            gates: u32,
            /// ceil(H / 4), Elman layout only
            units4: u32,
            /// 0: gates of one unit in a vec4; 1: four units of the one gate in a vec4
            by_unit: u32,
            /// 1: the layout backward needs, with the roles of j and k swapped (below)
            transposed: u32,
            /// first vec4 slot written (a direction's part of a shared tensor)
            dst_off: u32,
            _pad1: u32,
            _pad2: u32,
        }

        /// The parameters of pack.wgsl's `BiasParams` kernels.
        struct BiasParams {
            /// G*H
            n: u32,
            /// b_hh entries at index >= skip_from stay out (GRU's b_hn: 2H); n otherwise
            skip_from: u32,
            _pad0: u32,
            _pad1: u32,
        }

        /// The parameters of pack_f16.wgsl's `RoundParams` kernels.
        struct RoundParams {
            n: u32,
            dst_off: u32,
            src_off: u32,
            _pad0: u32,
        }
    }
}

/// pool.wgsl.
pub(crate) mod pool {
    uniforms! {
        /// The parameters of pool.wgsl's kernels.
        struct PoolParams {
            /// B·F outputs, one invocation each
            n: u32,
            features: u32,
            /// T (the backward kernels write every step)
            seq_len: u32,
            /// x[t, b, f] at t * s_t + b * s_b + f (sequence-major or batch-first)
            s_t: u32,
            s_b: u32,
            _pad0: u32,
            _pad1: u32,
            _pad2: u32,
        }
    }
}

/// recurrent.wgsl.
pub(crate) mod recurrent {
    uniforms! {
        /// The parameters of recurrent.wgsl's `GatherParams` kernels.
        struct GatherParams {
            batch: u32,
            /// G*H
            kdim: u32,
            /// the reverse step s whose product is computed (dG of step s + 1)
            step: u32,
            /// 1: the final pass, which reads dG of step 0
            last: u32,
            dg_dir: u32,
            dgh_off: u32,
            /// floats per block of the panel buffer (a multiple of 64)
            blk_stride: u32,
            /// floats per direction of the panel buffer
            dir_stride: u32,
            /// rows per block: 32, or 16, 8, 4 (`rec_panel16`, `rec_panel8`, …)
            rows: u32,
            _pad0: u32,
            _pad1: u32,
            _pad2: u32,
        }

        /// The parameters of recurrent.wgsl's `PanelParams` kernels.
        struct PanelParams {
            batch: u32,
            /// columns of this chunk of W
            cols: u32,
            /// the window's first row
            row0: u32,
            /// k in the window
            kc: u32,
            /// the window's first k (a row of W)
            k0: u32,
            /// k per z
            k_sub: u32,
            /// floats per row of wp (a multiple of 8)
            ldw: u32,
            /// the direction's first float in wp (a multiple of 4)
            w_off: u32,
            /// vec4 per row of part
            cols4: u32,
            /// the part slot of z = 0
            slot0: u32,
            /// the chunk's first vec4 in a row of part
            q_base: u32,
            /// vec4 of the chunk's columns
            chunk4: u32,
        }
    }
}
