// Package nab runs streaming anomaly detectors over a corpus in the format
// of the Numenta Anomaly Benchmark (NAB) and scores their output with NAB's
// rules, so that metricpipe's detectors can be compared with published ones.
//
// # Flow
//
//	c, err := nab.LoadCorpus("nab/data", "nab/labels/combined_windows.json")
//	scores, err := nab.Run(ctx, c, newDetector, "results/mydetector")
//	for _, p := range nab.Profiles() {
//		threshold, res, err := nab.Optimize(c, scores, p)
//		...
//	}
//
// Optimize chooses the threshold on the very series it scores, so its
// score flatters the detector; [CrossValidate] gives an honest estimate:
// each category (data subdirectory) is scored at the threshold chosen on
// the other categories.
//
// [LoadResults] reads result files back, so the output of any tool that
// writes NAB result files can be scored; [SaveThresholds] and
// [LoadThresholds] keep tuned thresholds so that they can be applied
// unchanged to another corpus with [Score].
//
// # Scoring
//
// Scoring goes by row position, never by timestamp: NAB files repeat
// timestamps and one steps back, so a detector emits exactly one score per
// input row, in input order. For a series of n rows:
//
//   - The first min(⌊0.15·n⌋, 750) rows are the probationary period. They
//     are not scored: a detection there is neither a true nor a false
//     positive. A window that ends inside it is not scored at all (it
//     counts in neither TP, FN, Null nor Perfect), and one that starts
//     inside it earns at most the reward of its first scored row; NAB's
//     labels have neither.
//   - A row is a detection when its score is at or above the threshold. A
//     NaN score is never a detection.
//   - In a window [start, end] of width w = end−start+1, only the earliest
//     scored detection counts; at row i it earns A_TP·S(p)/S(−1) with
//     p = −(end−i+1)/w and S(p) = 2/(1+e^(5p)) − 1: the full A_TP on the
//     first row, A_TP·S(−1/w)/S(−1) on the last.
//   - A window without detection costs A_FN.
//   - Every detection outside all windows costs A_FP·S(p) (a negative
//     number) with p = (i−end)/(w−1) measured from the most recent earlier
//     window. As in NAB's code, S(p) is taken as −1 once p ≥ 3, when there
//     is no earlier window, and when that window is one row wide.
//   - Raw is the sum over all files; Null = −A_FN and Perfect = A_TP per
//     scored window; Normalized = 100·(Raw−Null)/(Perfect−Null).
//
// Counts differ from NAB's score files on purpose: TP and FN count windows
// (detected or missed), FP counts false-positive rows. NAB counts rows.
package nab
