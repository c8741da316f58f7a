using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// Puts a <see cref="ResultCache"/> in front of an <see cref="InputAnalyzer"/>: a file is hashed, and only analysed when
/// the cache has nothing for its SHA-256 under the current rules and build. Dumps are not cached (they are not hashed:
/// they can be tens of GB). Thread-safe, like the analyzer.
/// </summary>
/// <param name="inner">An analyzer that computes file hashes (<see cref="ScanOptions.ComputeHashes"/>): a report is stored only
/// when its hash is the one looked up.</param>
internal sealed class CachingAnalyzer(InputAnalyzer inner, ResultCache cache, RuleSet rules, ScanOptions options)
{
    private readonly IReadOnlyDictionary<string, Rule> _rules = rules.Rules.ToDictionary(r => r.Id, StringComparer.Ordinal);

    public InputReport Analyze(InputItem item)
    {
        if (item is not InputFile file || HashOf(file) is not string sha256) return inner.Analyze(item);
        if (cache.TryGet(sha256, file, _rules, options.CollectInventory) is { } hit) return hit;
        var report = inner.Analyze(item);
        // Stored only when the analysis saw the bytes that were hashed (the file did not change in between).
        // A report cut by the time limit depends on the machine's speed: never cached.
        if (report.Artifacts.Count == 1 && report.Artifacts[0].Sha256 == sha256
            && !report.Artifacts[0].Notifications.Any(n => n.Code == NotificationCodes.TimeLimitReached))
            cache.Put(sha256, file, report);
        return report;
    }

    /// <summary>The file's SHA-256, or null for a dump or an unreadable file (the analyzer then reports it as usual).</summary>
    private static string? HashOf(InputFile file)
    {
        try
        {
            using var source = FileImageSource.Open(file.FullPath);
            Span<byte> head = stackalloc byte[Dumps.MemoryImageFormat.HeadSize];
            if (InputOpener.IsDumpLike(head[..source.Read(0, head)], file.FullPath, source.Length)) return null;
            return ImageHashes.Sha256(source);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
