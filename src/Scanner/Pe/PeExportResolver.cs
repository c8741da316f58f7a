using DriverAudit.Rules.Facts;

namespace DriverAudit.Scanner.Pe;

internal enum ExportResolutionStatus
{
    /// <summary>Found an export that is not a forwarder (<see cref="ExportResolution.Export"/> is code or data).</summary>
    Resolved,
    ModuleNotFound,
    ExportNotFound,
    /// <summary>The module's export table could not be read (e.g. pages missing in a dump): unresolved, not an error.</summary>
    ExportsUnavailable,
    MalformedForwarder,
    ForwarderCycle,
    HopLimit,
}

/// <summary>
/// Where a <c>module!export</c> finally lands. <see cref="Module"/> is the module of the last export looked at;
/// <see cref="Hops"/> counts forwarders followed (e.g. 1 for a HAL import that lands in ntoskrnl).
/// </summary>
internal readonly record struct ExportResolution(ExportResolutionStatus Status, string Module, PeExport? Export, int Hops)
{
    public bool Success => Status == ExportResolutionStatus.Resolved;
    /// <summary>"module!name" or "module!#ordinal" for a resolved export, e.g. "ntoskrnl!KeGetCurrentIrql".</summary>
    public string? Display => Export is null ? null : ImportRef.Format(Module, Export.Name, Export.Ordinal);
}

/// <summary>
/// Resolves exports across a set of images, following forwarders ("NTOSKRNL.ExFoo", "HAL.#12") with a hop
/// limit and cycle detection. Module names compare case-insensitively without directory or extension, so
/// "ntoskrnl.exe", "NTOSKRNL" and "\SystemRoot\system32\ntoskrnl.exe" are one module.
/// </summary>
internal sealed class PeExportResolver
{
    public const int DefaultMaxHops = 16;
    private readonly Func<string, PeExports?> _lookup;
    private readonly int _maxHops;

    /// <param name="lookup">Export table of a module by normalized name (see <see cref="NormalizeModuleName"/>), or null when unknown.</param>
    public PeExportResolver(Func<string, PeExports?> lookup, int maxHops = DefaultMaxHops)
    {
        _lookup = lookup;
        _maxHops = maxHops;
    }

    /// <summary>A resolver over named images; export tables are read lazily on first lookup.</summary>
    public static PeExportResolver FromImages(IEnumerable<KeyValuePair<string, PeImage>> images, int maxHops = DefaultMaxHops)
    {
        var map = new Dictionary<string, PeImage>(StringComparer.Ordinal);
        foreach (var (name, image) in images) map.TryAdd(NormalizeModuleName(name), image);
        return new PeExportResolver(m => map.TryGetValue(m, out var image) ? image.Exports : null, maxHops);
    }

    public ExportResolution Resolve(string module, string name) => Resolve(module, name, null);

    public ExportResolution Resolve(string module, int ordinal) => Resolve(module, null, ordinal);

    private ExportResolution Resolve(string module, string? name, int? ordinal)
    {
        var current = NormalizeModuleName(module);
        List<string>? seen = null;
        for (var hops = 0; ; hops++)
        {
            var exports = _lookup(current);
            if (exports is null) return new(ExportResolutionStatus.ModuleNotFound, current, null, hops);
            var export = name is not null ? exports.FindByName(name) : exports.FindByOrdinal(ordinal!.Value);
            if (export is null)
            {
                var status = exports.Status is PeTableStatus.Unreadable or PeTableStatus.Incomplete
                    ? ExportResolutionStatus.ExportsUnavailable : ExportResolutionStatus.ExportNotFound;
                return new(status, current, null, hops);
            }
            if (export.Forwarder is null) return new(ExportResolutionStatus.Resolved, current, export, hops);
            if (hops >= _maxHops) return new(ExportResolutionStatus.HopLimit, current, export, hops);
            var key = ImportRef.Format(current, name, ordinal);
            seen ??= [];
            if (seen.Contains(key)) return new(ExportResolutionStatus.ForwarderCycle, current, export, hops);
            seen.Add(key);
            if (!TryParseForwarder(export.Forwarder, out var nextModule, out name, out ordinal))
                return new(ExportResolutionStatus.MalformedForwarder, current, export, hops);
            current = NormalizeModuleName(nextModule);
        }
    }

    /// <summary>Splits "MODULE.Name" or "MODULE.#12" at the last dot.</summary>
    public static bool TryParseForwarder(string forwarder, out string module, out string? name, out int? ordinal)
    {
        module = "";
        name = null;
        ordinal = null;
        var dot = forwarder.LastIndexOf('.');
        if (dot <= 0 || dot == forwarder.Length - 1) return false;
        module = forwarder[..dot];
        var symbol = forwarder.AsSpan(dot + 1);
        if (symbol[0] == '#')
        {
            if (!int.TryParse(symbol[1..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var o) || o > 0xFFFF) return false;
            ordinal = o;
            return true;
        }
        name = symbol.ToString();
        return true;
    }

    /// <summary>"\SystemRoot\System32\NTOSKRNL.EXE" → "ntoskrnl": no directory, no extension, lower case.</summary>
    public static string NormalizeModuleName(string module)
    {
        var s = module.AsSpan();
        var slash = s.LastIndexOfAny('\\', '/');
        if (slash >= 0) s = s[(slash + 1)..];
        var dot = s.LastIndexOf('.');
        if (dot > 0 && s.Length - dot <= 4) s = s[..dot];
        return s.ToString().ToLowerInvariant();
    }
}
