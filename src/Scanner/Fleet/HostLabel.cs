using System.CommandLine;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// The <c>--host LABEL</c> option: which machine a scan's inputs come from. Default: the machine name, but only when
/// a path is this machine's live <c>System32\drivers</c> — a copied driver store or a dump could come from anywhere,
/// and a wrong label is worse than none.
/// </summary>
internal static class HostLabel
{
    public const int MaxLength = 255;

    public static Option<string?> CreateOption()
    {
        var option = new Option<string?>("--host")
        {
            Description = "Label of the machine the inputs come from, recorded in every output (SARIF run and result properties, " +
                          "JSON 'host'). Default: this machine's name when scanning its live System32\\drivers, else none.",
        };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is { } value && Invalid(value) is { } why) r.AddError($"--host: {why}");
        });
        return option;
    }

    /// <summary>Why a label is refused (empty, too long, control characters), or null.</summary>
    public static string? Invalid(string label)
    {
        if (string.IsNullOrWhiteSpace(label)) return "the label is empty.";
        if (label.Length > MaxLength) return $"the label is longer than {MaxLength} characters.";
        if (label.Any(char.IsControl)) return "the label contains control characters.";
        return null;
    }

    /// <summary>The label to record: the option's value, else the machine name for a live driver store, else null.</summary>
    public static string? Resolve(string? option, IEnumerable<string> fullPaths) =>
        option ?? DefaultFor(fullPaths, OperatingSystem.IsWindows() ? Path.Combine(Environment.SystemDirectory, "drivers") : null, Environment.MachineName);

    /// <param name="liveDrivers">This machine's System32\drivers, or null where there is none (not Windows).</param>
    internal static string? DefaultFor(IEnumerable<string> fullPaths, string? liveDrivers, string machineName)
    {
        if (liveDrivers is null) return null;
        var folder = Path.TrimEndingDirectorySeparator(liveDrivers);
        foreach (var path in fullPaths)
        {
            var p = Path.TrimEndingDirectorySeparator(path);
            if (p.Equals(folder, StringComparison.OrdinalIgnoreCase)
                || (p.Length > folder.Length && p.StartsWith(folder, StringComparison.OrdinalIgnoreCase) && p[folder.Length] is '\\' or '/'))
                return machineName;
        }
        return null;
    }
}
