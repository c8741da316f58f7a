using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>
/// Hostile files through the whole analyzer with the full default pack (every fact a rule can ask for):
/// no internal error, and work bounded by the file, not by what its headers claim.
/// </summary>
public sealed class MutatedInputTests
{
    private static readonly RuleSet Pack = RuleSet.Load(RuleSources.Embedded());

    public static TheoryData<int> Seeds()
    {
        var data = new TheoryData<int>();
        for (var seed = 1; seed <= 12; seed++) data.Add(seed);
        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Mutated_fixtures_never_cause_an_internal_error_or_unbounded_work(int seed)
    {
        var random = new Random(seed);
        var fixtures = Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var analyzer = new InputAnalyzer(Pack, new ScanOptions(1, RuleLevel.Error, false, ComputeHashes: true));
        using var t = new TempDir();
        for (var i = 0; i < 25; i++)
        {
            var bytes = File.ReadAllBytes(fixtures[random.Next(fixtures.Length)]);
            Mutate(bytes, random);
            var path = t.File($"m{seed}_{i}.sys", bytes);

            var before = GC.GetAllocatedBytesForCurrentThread();
            var report = analyzer.Analyze(new InputFile(path, $"m{seed}_{i}.sys", Explicit: true));
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

            var notes = report.Notifications.Concat(report.Artifacts.SelectMany(a => a.Notifications)).ToList();
            Assert.DoesNotContain(notes, n => n.Code == NotificationCodes.InternalError);
            Assert.True(allocated < 32 << 20, $"seed {seed} file {i}: {allocated:N0} bytes allocated for a {bytes.Length}-byte file");
        }
    }

    private static void Mutate(byte[] bytes, Random random)
    {
        switch (random.Next(3))
        {
            case 0: // bytes anywhere
                for (var k = random.Next(1, 24); k > 0; k--) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                break;
            case 1: // the headers and section table, where counts and sizes live
                for (var k = random.Next(1, 12); k > 0; k--) bytes[random.Next(Math.Min(bytes.Length, 0x400))] = (byte)random.Next(256);
                break;
            default: // large dwords in the headers
                for (var k = random.Next(1, 8); k > 0; k--)
                {
                    var at = random.Next(Math.Max(1, Math.Min(bytes.Length, 0x400) - 4));
                    BitConverter.GetBytes(random.Next(4) switch { 0 => 0xFFFFFFFFu, 1 => 0x80000000u, 2 => 0x7FFFFFFFu, _ => 0x10000u }).CopyTo(bytes, at);
                }
                break;
        }
    }
}
