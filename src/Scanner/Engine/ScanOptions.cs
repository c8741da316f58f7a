using DriverAudit.Rules.Engine;

namespace DriverAudit.Scanner.Engine;

/// <summary>How a scan runs and gates.</summary>
/// <param name="Jobs">Inputs analysed in parallel.</param>
/// <param name="FailOn">Lowest finding level that makes the exit code 1; null = never.</param>
/// <param name="FailOnInputError">Exit 3 when some inputs could not be analysed.</param>
/// <param name="ComputeHashes">SHA-256 of each file, for SARIF artifacts (read only when a report needs it).</param>
/// <param name="CollectInventory">Describe each analysed image (<see cref="ArtifactReport.Image"/>) for inventories.</param>
internal sealed record ScanOptions(int Jobs, RuleLevel? FailOn, bool FailOnInputError, bool ComputeHashes, bool CollectInventory = false)
{
    /// <summary>Default per-image wall-clock budget: generous, so only a pathological input meets it.</summary>
    public static readonly TimeSpan DefaultTimeLimit = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Wall-clock budget per image (a file, or one module of a dump): past it the image's remaining rules are not
    /// evaluated and a <see cref="NotificationCodes.TimeLimitReached"/> notification says which; the scan goes on.
    /// Zero or negative: no limit.
    /// </summary>
    public TimeSpan TimeLimit { get; init; } = DefaultTimeLimit;

    /// <summary>The clock the time budget reads (tests inject one; nothing else reads it).</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;
}

/// <summary>The time budget of one image, started when its analysis starts; checked between rules.</summary>
internal sealed class ImageDeadline
{
    private readonly TimeProvider _clock;
    private readonly long _start;
    private readonly TimeSpan _limit;

    public ImageDeadline(ScanOptions options)
    {
        _clock = options.Clock;
        _limit = options.TimeLimit;
        _start = _clock.GetTimestamp();
    }

    public TimeSpan Limit => _limit;

    public bool Expired => _limit > TimeSpan.Zero && _clock.GetElapsedTime(_start) > _limit;

    /// <summary>The notification for an image whose rules <paramref name="stopped"/> were not evaluated; null when none were.</summary>
    public Notification? Notice(IReadOnlyList<DriverAudit.Rules.Engine.Rule> stopped, string displayPath, string? uri)
    {
        if (stopped.Count == 0) return null;
        var names = string.Join(", ", stopped.Take(8).Select(r => r.Id)) + (stopped.Count > 8 ? ", …" : "");
        return new Notification(NotificationCodes.TimeLimitReached, NotificationLevel.Warning,
            $"'{displayPath}': analysis stopped at the time limit of {_limit.TotalSeconds:0.###} s per image; {stopped.Count} rule(s) were not evaluated ({names}): their absence of findings means unknown, not clean.", uri);
    }
}
