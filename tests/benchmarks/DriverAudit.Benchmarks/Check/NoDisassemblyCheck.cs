using DriverAudit.Benchmarks.Corpus;
using DriverAudit.Benchmarks.Rules;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Benchmarks.Check;

/// <summary>
/// `--check`: proves that a scan whose rules need no code facts never disassembles. Evaluates the import-only
/// rule DA1001 over the fixture corpus and the large driver, through RuleSet.Evaluate and through the engine's
/// InputAnalyzer, and requires the process-wide CodeStats counters not to move. Then it reads call sites once
/// and requires the counters to move, so a dead counter cannot pass the check. Also reports, per rule of the
/// disk pack, whether evaluating it decoded code (information, not a failure: call rules must decode).
/// </summary>
public static class NoDisassemblyCheck
{
    private readonly record struct Counters(long Instructions, long Regions, long Sweeps)
    {
        public static Counters Now => new(CodeStats.InstructionsDecoded, CodeStats.RegionsDecoded, CodeStats.Sweeps);
        public override string ToString() => $"instructions={Instructions} regions={Regions} sweeps={Sweeps}";
    }

    public static int Run(TextWriter log)
    {
        var images = new ImageSet("fixtures+large-driver", [.. ImageSet.FixtureCorpus().Paths, .. ImageSet.SyntheticLarge().Paths]);
        var single = RulePack.SingleImportRule();
        log.WriteLine($"check: {images.Count} images ({images.TotalBytes:N0} bytes), rule set: {string.Join(", ", single.Set.Rules.Select(r => r.Id))}");
        var failures = 0;

        var before = Counters.Now;
        var matches = Pipeline.ForEach(images, f => single.Set.Evaluate(f).Count);
        failures += Expect(log, "RuleSet.Evaluate, import rule only", before, Counters.Now, moved: false, $"{matches} findings");

        before = Counters.Now;
        var analyzer = new InputAnalyzer(single.Set, new ScanOptions(1, null, false, ComputeHashes: true));
        var findings = images.Paths.Sum(p => analyzer.Analyze(new InputFile(p, Path.GetFileName(p), Explicit: true)).Artifacts.Sum(a => a.Findings.Count));
        failures += Expect(log, "InputAnalyzer.Analyze, import rule only", before, Counters.Now, moved: false, $"{findings} findings");
        if (matches == 0 || findings != matches)
        {
            log.WriteLine($"FAIL  the import rule must match something, identically on both paths (evaluate {matches}, analyzer {findings})");
            failures++;
        }

        before = Counters.Now;
        var calls = Pipeline.ForEach(images, f => f.Calls.Count);
        var largeCalls = Pipeline.ForEach(ImageSet.SyntheticLarge(), f => f.Calls.Count);
        failures += Expect(log, "PeFacts.Calls (liveness: the counters do move)", before, Counters.Now, moved: true,
            $"{calls} call sites, {largeCalls} of them in large_driver.sys");

        log.WriteLine("per rule of rules/*.yaml (information):");
        var full = RulePack.DefaultFromDisk();
        full.Describe(log);
        foreach (var source in full.Sources)
        {
            var set = RuleSet.Load([source]);
            before = Counters.Now;
            var n = Pipeline.ForEach(images, f => set.Evaluate(f).Count);
            var delta = Counters.Now.Instructions - before.Instructions;
            log.WriteLine($"  {string.Join(",", set.Rules.Select(r => r.Id)),-8} {n,5} findings  {(delta == 0 ? "no disassembly" : $"decoded {delta:N0} instructions")}");
        }

        log.WriteLine(failures == 0 ? "check: OK" : $"check: {failures} FAILED");
        return failures == 0 ? 0 : 1;
    }

    private static int Expect(TextWriter log, string what, Counters before, Counters after, bool moved, string note)
    {
        var ok = (before != after) == moved;
        log.WriteLine($"{(ok ? "ok  " : "FAIL")}  {what}: {note}; before {before}; after {after}");
        return ok ? 0 : 1;
    }
}
