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

    private static long Bytes(JsonElement value) => value.ValueKind == JsonValueKind.Number
        ? value.GetInt64()
        // NativeAOT reads runtime knobs as decimal (strtoull base 10): a hex string would be read as 0, i.e. not set.
        : long.Parse(value.GetString()!, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void The_gen0_budget_is_capped()
    {
        var p = Properties();
        Assert.False(p.GetProperty("System.GC.Server").GetBoolean());
        // Without a cap, non-concurrent GC lets the gen-0 budget grow to 200 MB while little survives (a scan's objects
        // die with their file), so peak RSS grew with the number of files (1k → 10k fixture copies: 82 → 97 MB).
        Assert.True(p.TryGetProperty("System.GC.Gen0MaxBudget", out var budget), "System.GC.Gen0MaxBudget is not set");
        Assert.InRange(Bytes(budget), 1L << 20, 32L << 20);
    }

    [Fact]
    public void Full_collections_do_not_stop_the_workers_and_mid_sized_arrays_stay_off_the_large_object_heap()
    {
        var p = Properties();
        // Blocking full collections stopped every worker (Wine i386: 25 per scan, 4.4 % of the CPU): -j 2 did not scale.
        Assert.True(p.GetProperty("System.GC.Concurrent").GetBoolean());
        Assert.True(p.TryGetProperty("System.GC.LOHThreshold", out var threshold), "System.GC.LOHThreshold is not set");
        Assert.InRange(Bytes(threshold), 256L << 10, 4L << 20);
    }
}
