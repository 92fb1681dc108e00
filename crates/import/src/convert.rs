//! Layout changes between the frameworks' weight tensors and PyTorch's: gate blocks in another
//! order, and matrices stored transposed (Keras keeps `x·W`, PyTorch `W·x`).

/// `data` is `G` blocks of `gate_rows × cols` (gates stacked along the rows, as `weight_ih`);
/// block k of the result is block `order[k]` of `data`. The caller has checked that `data`
/// holds `order.len()` blocks.
pub(crate) fn reorder_gates(
    data: &[f32],
    gate_rows: usize,
    cols: usize,
    order: &[usize],
) -> Vec<f32> {
    let block = gate_rows * cols;
    let mut out = Vec::with_capacity(data.len());
    for &g in order {
        out.extend_from_slice(&data[g * block..(g + 1) * block]);
    }
    out
}

/// `[rows, cols]` row-major to `[cols, rows]`. The caller has checked `data.len()`.
pub(crate) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len());
    for c in 0..cols {
        out.extend((0..rows).map(|r| data[r * cols + c]));
    }
    out
}

/// PyTorch's LSTM gates i,f,g,o from ONNX's i,o,f,c: the blocks at 0, 2, 3, 1.
pub(crate) const LSTM_FROM_ONNX: [usize; 4] = [0, 2, 3, 1];
/// PyTorch's GRU gates r,z,n from ONNX's and Keras's z,r,h: the blocks at 1, 0, 2.
pub(crate) const GRU_FROM_ZRH: [usize; 3] = [1, 0, 2];

#[cfg(test)]
mod tests {
    use super::*;

    /// Block k of the result is the source block the order names; rows stay whole.
    #[test]
    fn reorder_moves_whole_blocks() {
        // Three gates of 2 rows × 2 columns, each element naming its gate in the tens.
        let data: Vec<f32> = (0..3)
            .flat_map(|g| (0..4).map(move |e| (10 * g + e) as f32))
            .collect();
        let out = reorder_gates(&data, 2, 2, &GRU_FROM_ZRH);
        assert_eq!(
            out,
            [10., 11., 12., 13., 0., 1., 2., 3., 20., 21., 22., 23.]
        );
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let out = transpose(&[1., 2., 3., 4., 5., 6.], 2, 3);
        assert_eq!(out, [1., 4., 2., 5., 3., 6.]);
    }
}
