namespace DriverAudit.Scanner.Pe;

// Lazy directory readers: each table is parsed on first access and cached. Readers never throw for bad
// data; the catch-all below only turns a reader bug on hostile input into a diagnostic instead of a crash.
internal sealed partial class PeImage
{
    private PeImportTable? _imports;
    private PeImportTable? _delayImports;
    private PeExports? _exports;
    private PeLoadConfig? _loadConfig;
    private PeDebugInfo? _debug;
    private PeVersionInfo? _version;
    private PeCertificateTable? _certificates;

    /// <summary>Directory 1: import descriptors.</summary>
    public PeImportTable Imports => _imports ??= Guard(PeImportReader.ReadImports, "imports", new PeImportTable(PeTableStatus.Unreadable, [], null));

    /// <summary>Directory 13: delay-load descriptors (RVA-based and old VA-based forms).</summary>
    public PeImportTable DelayImports => _delayImports ??= Guard(PeImportReader.ReadDelayImports, "delay imports", new PeImportTable(PeTableStatus.Unreadable, [], null));

    /// <summary>Directory 0.</summary>
    public PeExports Exports => _exports ??= Guard(PeExportReader.Read, "exports", PeExports.Empty(PeTableStatus.Unreadable));

    /// <summary>Directory 10.</summary>
    public PeLoadConfig LoadConfig => _loadConfig ??= Guard(PeLoadConfigReader.Read, "load config", PeLoadConfig.Unreadable);

    /// <summary>Directory 6, with the CodeView RSDS record when present.</summary>
    public PeDebugInfo Debug => _debug ??= Guard(PeDebugReader.Read, "debug directory", new PeDebugInfo(PeTableStatus.Unreadable, [], null));

    /// <summary>RT_VERSION from directory 2.</summary>
    public PeVersionInfo VersionInfo => _version ??= Guard(PeVersionReader.Read, "version resource", new PeVersionInfo(PeTableStatus.Unreadable, null, null, []));

    /// <summary>Directory 4 (a file offset, not an RVA).</summary>
    public PeCertificateTable Certificates => _certificates ??= Guard(PeCertificateReader.Read, "certificate table", new PeCertificateTable(PeTableStatus.Unreadable, 0, 0, []));

    private T Guard<T>(Func<PeImage, T> read, string what, T fallback)
    {
        try
        {
            return read(this);
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or OverflowException or InvalidOperationException)
        {
            Diagnose("reader-failure", $"{what}: {e.GetType().Name}: {e.Message}");
            return fallback;
        }
    }
}
