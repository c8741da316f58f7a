using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// Analyses one crawler item: opens it, recognises it by content, parses the image, evaluates the
/// rules and turns matches into findings. Never throws: every failure becomes a notification, so one
/// bad input cannot stop a scan. Thread-safe (called from several workers).
/// </summary>
internal sealed class InputAnalyzer(RuleSet rules, ScanOptions options)
{
    private readonly DumpInputAnalyzer _dumps = new(rules, options.CollectInventory, options);

    public InputReport Analyze(InputItem item)
    {
        switch (item)
        {
            case InputProblem:
                // Skipped on purpose (a loop, a FIFO or device) or not there: the one classification says how.
                return Refused(InputOpener.Open(item), computeHashes: false);
            case InputFile f:
                try
                {
                    return AnalyzeFile(f);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A defect of ours, not of the input: report it and let the scan go on.
                    return InputReport.Problem(new Notification(NotificationCodes.InternalError, NotificationLevel.Error,
                        $"Internal error while analysing '{f.DisplayPath}': {e.GetType().Name}: {e.Message}. Please report this with the file.", f.Uri));
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(item));
        }
    }

    private InputReport AnalyzeFile(InputFile file)
    {
        var deadline = new ImageDeadline(options);
        using var input = InputOpener.Open(file);
        if (input.Dump is not null) return _dumps.Analyze(input);
        if (input.Image is not PeImage image) return Refused(input, options.ComputeHashes);

        var source = input.Source!;
        var facts = new PeFacts(image, file.DisplayPath);
        var notEvaluated = new List<Rule>();
        var stopped = new List<Rule>();
        var findings = CapFindings(Findings(rules.Evaluate(facts, notEvaluated, () => deadline.Expired, stopped), file.Uri, module: null), file.DisplayPath, file.Uri, out var capped);
        // After the rules: a hash rule may already have computed it (facts cache it).
        var notes = image.Diagnostics
            .Select(d => new Notification(NotificationCodes.MalformedTable, NotificationLevel.Warning, $"'{file.DisplayPath}': {d.Message}", file.Uri))
            .ToList();
        notes.AddRange(NotificationCodes.NotEvaluated(notEvaluated, file.DisplayPath, facts.CodeNotEvaluated ?? facts.AbsentInstructions?.Reason, file.Uri));
        if (capped is not null) notes.Add(capped);
        if (deadline.Notice(stopped, file.DisplayPath, file.Uri) is { } late) notes.Add(late);
        return new InputReport([new ArtifactReport
        {
            Uri = file.Uri,
            Length = source.Length,
            Sha256 = options.ComputeHashes || options.CollectInventory ? facts.FileSha256 : null,
            Analyzed = true,
            Image = options.CollectInventory ? ImageRecord.Describe(image, facts.Signing, facts.FileSha256) : null,
            Findings = findings,
            Notifications = notes,
        }], []);
    }

    /// <summary>
    /// The report of an input that is not analysable, in the words and levels scan has always used: one notification
    /// on the input's artifact. A hibernation or page file met while crawling a Windows folder is expected (a note);
    /// a link loop or a FIFO skipped on purpose is a warning; the rest are errors (they gate with --fail-on-error).
    /// </summary>
    internal static InputReport Refused(OpenedInput input, bool computeHashes)
    {
        var item = input.Item;
        var (code, level, message) = input.Class switch
        {
            InputClass.CrawlProblem when item is InputProblem p => (p.Code,
                p.Code is NotificationCodes.LinkLoop or NotificationCodes.SpecialFile ? NotificationLevel.Warning : NotificationLevel.Error, p.Message),
            InputClass.Unreadable => (NotificationCodes.FileUnreadable, NotificationLevel.Error, $"Cannot read '{item.DisplayPath}': {input.Reason}"),
            InputClass.UserModeDump => (NotificationCodes.UserModeDump, NotificationLevel.Error, input.RefusalMessage!),
            InputClass.UnsupportedMemoryFormat => (NotificationCodes.DumpUnreadable, NotificationLevel.Note, $"'{item.DisplayPath}' was not analysed: {input.Reason}"),
            InputClass.UnreadableDump => (NotificationCodes.DumpUnreadable, NotificationLevel.Error, $"'{item.DisplayPath}' was not analysed: {input.Reason}"),
            InputClass.NotPe => (NotificationCodes.NotPe, NotificationLevel.Error, $"'{item.DisplayPath}' was not analysed: {input.Reason}"),
            _ => (NotificationCodes.MalformedPe, NotificationLevel.Error, $"'{item.DisplayPath}' was not analysed: {input.Reason}"),
        };
        var n = new Notification(code, level, message, item.Uri);
        // A crawl problem or an unreadable file has no artifact of its own: nothing was read.
        if (input.Class is InputClass.CrawlProblem or InputClass.Unreadable) return InputReport.Problem(n);
        return new InputReport([new ArtifactReport
        {
            Uri = item.Uri,
            Length = input.Length,
            Sha256 = computeHashes && input.Source is { } source ? ImageHashes.Sha256(source) : null,
            Notifications = [n],
        }], []);
    }

    /// <summary>
    /// Findings kept per image (a file or a dump module). A hostile image can match a per-anchor rule at every
    /// one of thousands of anchors; past this the most severe are kept (then the first found) and the rest are
    /// counted in a notification, so one image cannot flood the report.
    /// </summary>
    public const int MaxFindingsPerImage = 5_000;

    /// <summary>At most <see cref="MaxFindingsPerImage"/> findings, most severe first kept; <paramref name="notice"/> counts the rest.</summary>
    internal static IReadOnlyList<Finding> CapFindings(IReadOnlyList<Finding> findings, string displayPath, string uri, out Notification? notice)
    {
        notice = null;
        if (findings.Count <= MaxFindingsPerImage) return findings;
        var kept = findings.Select((f, i) => (f, i)).OrderByDescending(x => x.f.Level).ThenBy(x => x.i).Take(MaxFindingsPerImage)
            .OrderBy(x => x.i).Select(x => x.f).ToList(); // report order unchanged among those kept
        notice = new Notification(NotificationCodes.MalformedTable, NotificationLevel.Warning,
            $"'{displayPath}': {findings.Count - MaxFindingsPerImage:N0} more finding(s) for this image were left out: at most {MaxFindingsPerImage:N0} are reported per image, the most severe first.", uri);
        return kept;
    }

    /// <summary>Turns rule matches into findings with stable fingerprints.</summary>
    internal static IReadOnlyList<Finding> Findings(IReadOnlyList<RuleMatch> matches, string uri, string? module)
    {
        var list = new List<Finding>(matches.Count);
        foreach (var m in matches)
        {
            var location = m.Anchor.Kind == AnchorKind.Image ? "image" : $"{m.Anchor.Kind.Name()} {m.Anchor.Key}";
            list.Add(new Finding(m.Rule, m.Rule.Level, m.Message, m.Anchor,
                FindingFingerprint.Compute(m.Rule.Id, uri, module, m.Anchor.Key), location));
        }
        return list;
    }
}
