using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.Engine;

/// <summary>
/// The garbage-collector settings the executable ships with (driveraudit.runtimeconfig.json, copied beside the tests;
/// the AOT build embeds the same values). Peak memory flat in file count depends on them.
/// </summary>
public sealed class RuntimeSettingsTests
{
    private static JsonElement Properties()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "driveraudit.runtimeconfig.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").Clone();
    }

    [Fact]
    public void Workstation_non_concurrent_gc_has_its_gen0_budget_capped()
    {
        var p = Properties();
        Assert.False(p.GetProperty("System.GC.Server").GetBoolean());
        // Without concurrent GC the gen-0 budget may grow to 200 MB while little survives (a scan's objects die with
        // their file), so peak RSS grew with the number of files (1k → 10k fixture copies: 82 → 97 MB).
        if (p.TryGetProperty("System.GC.Concurrent", out var concurrent) && !concurrent.GetBoolean())
        {
            Assert.True(p.TryGetProperty("System.GC.Gen0MaxBudget", out var budget), "System.GC.Gen0MaxBudget is not set");
            // NativeAOT reads runtime knobs as decimal (strtoull base 10): a hex string would be read as 0, i.e. no cap.
            var bytes = budget.ValueKind == JsonValueKind.Number ? budget.GetInt64() : long.Parse(budget.GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(bytes, 1L << 20, 32L << 20);
        }
    }
}
