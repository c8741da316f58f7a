namespace DriverAudit.Scanner.Dumps;

/// <summary>Thread-safe, append-only list: lazily built indexes may report after the dump is open.</summary>
internal sealed class DiagnosticBag
{
    private const int Cap = 1000; // a hostile dump must not grow this without bound
    private readonly List<DumpDiagnostic> _items = [];
    private readonly Lock _lock = new();

    public void Add(string code, string message)
    {
        lock (_lock)
        {
            if (_items.Count < Cap) _items.Add(new DumpDiagnostic(code, message));
        }
    }

    public IReadOnlyList<DumpDiagnostic> Snapshot()
    {
        lock (_lock) return _items.ToArray();
    }
}
