namespace DriverAudit.Scanner.Engine;

internal enum NotificationLevel { Note, Warning, Error }

/// <summary>
/// Something the tool has to say about its own run: an input it could not read, a malformed table,
/// a truncated result list. Becomes a SARIF toolExecutionNotification and a line on stderr.
/// </summary>
/// <param name="Code">Stable descriptor id (see <see cref="NotificationCodes"/>).</param>
/// <param name="Uri">The input concerned, as reported (relative to the source root when possible).</param>
internal sealed record Notification(string Code, NotificationLevel Level, string Message, string? Uri = null)
{
    /// <summary>The rule the notification is about (SARIF associatedRule), when it is about one.</summary>
    public string? RuleId { get; init; }
}

/// <summary>The notification descriptors DriverAudit declares (SARIF tool.driver.notifications).</summary>
internal static class NotificationCodes
{
    public const string PathNotFound = "DA0001";
    public const string InvalidPath = "DA0002";
    public const string DanglingLink = "DA0003";
    public const string LinkLoop = "DA0004";
    public const string DirectoryUnreadable = "DA0005";
    public const string SpecialFile = "DA0006";
    public const string FileUnreadable = "DA0010";
    public const string NotPe = "DA0011";
    public const string MalformedPe = "DA0012";
    public const string MalformedTable = "DA0013";
    public const string UserModeDump = "DA0014";
    public const string DumpUnreadable = "DA0015";
    public const string MalformedDump = "DA0016";
    public const string DumpImagesUnavailable = "DA0017";
    public const string ModuleNotAnalysable = "DA0018";
    public const string UnresolvedImport = "DA0019";
    public const string RuleConfiguration = "DA0020";
    public const string RuleNotEvaluated = "DA0021";
    public const string SuppressionExpired = "DA0022";
    public const string SuppressedResultsLeftOut = "DA0023";
    public const string ResultsTruncated = "DA0030";
    public const string NotificationsTruncated = "DA0031";
    public const string TimeLimitReached = "DA0032";
    public const string InternalError = "DA0099";

    /// <summary>Id → (name, description) in id order, for the SARIF descriptors.</summary>
    public static IReadOnlyList<(string Id, string Name, string Description)> All { get; } =
    [
        (PathNotFound, "PathNotFound", "A path given on the command line does not exist."),
        (InvalidPath, "InvalidPath", "A path given on the command line is not a valid path."),
        (DanglingLink, "DanglingLink", "A symbolic link points to nothing."),
        (LinkLoop, "SymbolicLinkLoop", "A directory was reached twice through symbolic links; it was scanned once."),
        (DirectoryUnreadable, "DirectoryUnreadable", "A directory could not be listed."),
        (SpecialFile, "SpecialFile", "A FIFO, socket or device was found where a file was expected; it was skipped without being opened."),
        (FileUnreadable, "FileUnreadable", "A file could not be opened or read."),
        (NotPe, "NotPortableExecutable", "A file selected for scanning is not a PE image (no MZ and PE signatures)."),
        (MalformedPe, "MalformedImage", "A PE image is truncated or its headers are malformed; it was not analysed."),
        (MalformedTable, "MalformedTable", "A table inside a PE image is malformed; what could be read was analysed."),
        (UserModeDump, "UserModeDump", "A user-mode dump (minidump 'MDMP' or 'USER' crash dump) was given; DriverAudit reads kernel crash dumps."),
        (DumpUnreadable, "KernelDumpUnreadable", "A kernel crash dump is truncated, encrypted, corrupt or of an unsupported type; it was not analysed."),
        (MalformedDump, "MalformedKernelDump", "A structure inside a kernel crash dump is malformed; what could be read was analysed."),
        (DumpImagesUnavailable, "DumpImagesUnavailable", "The kernel dump holds no module images (triage minidump): modules are listed, not analysed."),
        (ModuleNotAnalysable, "DumpModuleNotAnalysable", "A module's headers are not in the dump (paged out or filtered); the module was skipped."),
        (UnresolvedImport, "UnresolvedImport", "An IAT slot of a dump module could not be resolved to an export, or disagrees with the import descriptor."),
        (RuleConfiguration, "RuleConfiguration", "A rule file or rule option is invalid."),
        (RuleNotEvaluated, "RuleNotEvaluated", "A rule that needs code analysis could not be evaluated on an image (an architecture without code analysis, or packed code); its absence of findings means unknown, not clean."),
        (SuppressionExpired, "SuppressionExpired", "A suppression in the config file is past its 'expires' date; it no longer applies, so the results it covered are reported and gate again."),
        (SuppressedResultsLeftOut, "SuppressedResultsLeftOut", "Results that the config file suppresses were left out of the SARIF log: GitHub code scanning does not read SARIF suppressions and would show them as open alerts."),
        (ResultsTruncated, "ResultsTruncated", "More results than GitHub code scanning accepts in one run; the rest were left out."),
        (NotificationsTruncated, "NotificationsTruncated", "One input gave more notifications than are reported per input; the rest were counted, not listed."),
        (TimeLimitReached, "TimeLimitReached", "An image's analysis reached the per-image time limit (--time-limit); the rules not yet evaluated were skipped and are named. The scan went on."),
        (InternalError, "InternalError", "An unexpected error while analysing one input; the scan went on."),
    ];

    /// <summary>True when the notification means the input could not be analysed (counts for --fail-on-error).</summary>
    public static bool IsInputFailure(Notification n) => n.Level == NotificationLevel.Error;

    /// <summary>One "not evaluated" notification per rule that needed code the image's analysis could not give.</summary>
    public static IEnumerable<Notification> NotEvaluated(IEnumerable<DriverAudit.Rules.Engine.Rule> rules, string displayPath, string? reason, string? uri)
    {
        foreach (var r in rules)
            yield return new Notification(RuleNotEvaluated, NotificationLevel.Note,
                $"'{displayPath}': {r.Id} {r.Name} not evaluated: {reason}", uri)
            { RuleId = r.Id };
    }
}
