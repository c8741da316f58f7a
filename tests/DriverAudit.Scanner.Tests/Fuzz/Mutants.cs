using System.Buffers.Binary;
using System.Security.Cryptography;
using FsCheck;
using FsCheck.Fluent;

namespace DriverAudit.Scanner.Tests.Fuzz;

public enum EditKind { Byte, Xor, Dword, Zero16 }

/// <summary>One change to a seed: the offset is taken modulo the seed's length, or of its first 1 KiB (headers) when <see cref="Head"/>.</summary>
public sealed record Edit(int Offset, bool Head, byte Value, EditKind Kind)
{
    public override string ToString() => $"{Kind}@{(Head ? "h" : "")}0x{Offset:x}={Value:x2}";
}

/// <summary>A seed chosen by index, edits applied in order, and (loaded images) a mask of 4 KiB pages made missing.</summary>
public sealed record Mutant(int Seed, Edit[] Edits, uint MissingPages)
{
    public override string ToString() => $"seed {Seed}, missing 0x{MissingPages:x}, edits [{string.Join(", ", Edits.AsEnumerable())}]";

    public byte[] Apply(byte[] seed)
    {
        var bytes = seed.ToArray();
        if (bytes.Length == 0) return bytes;
        foreach (var e in Edits)
        {
            var span = e.Head ? Math.Min(bytes.Length, 0x400) : bytes.Length;
            var at = (int)((uint)e.Offset % (uint)span);
            switch (e.Kind)
            {
                case EditKind.Byte: bytes[at] = e.Value; break;
                case EditKind.Xor: bytes[at] ^= (byte)(e.Value | 1); break;
                case EditKind.Dword when at + 4 <= bytes.Length:
                    // Counts, sizes and RVAs at their extremes.
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (e.Value % 6) switch
                    {
                        0 => 0xFFFFFFFFu,
                        1 => 0x80000000u,
                        2 => 0x7FFFFFFFu,
                        3 => 0x10000u,
                        4 => 0x400u,
                        _ => (uint)e.Value << 12,
                    });
                    break;
                case EditKind.Zero16:
                    bytes.AsSpan(at, Math.Min(16, bytes.Length - at)).Clear();
                    break;
            }
        }
        return bytes;
    }

    /// <summary>Per-page "missing" flags for a loaded image of <paramref name="length"/> bytes (the mask repeats every 32 pages).</summary>
    public bool[]? Missing(int length)
    {
        if (MissingPages == 0) return null;
        var pages = new bool[(length + 0xFFF) / 0x1000];
        for (var i = 1; i < pages.Length; i++) pages[i] = (MissingPages >> (i % 32) & 1) != 0; // page 0 (headers) stays
        return pages;
    }
}

/// <summary>Mutant generation with shrinking: fewer edits, no missing pages, header edits become plain bytes.</summary>
public static class Mutants
{
    public static Arbitrary<Mutant> Of(int seeds, bool withMissingPages = false)
    {
        var edit =
            from offset in Gen.Choose(0, int.MaxValue)
            from head in Gen.Frequency((3, Gen.Constant(true)), (2, Gen.Constant(false)))
            from value in Gen.Frequency((3, Gen.Choose(0, 255).Select(v => (byte)v)), (1, Gen.Elements<byte>(0, 1, 0x7F, 0x80, 0xFF)))
            from kind in Gen.Frequency((5, Gen.Constant(EditKind.Byte)), (2, Gen.Constant(EditKind.Xor)), (2, Gen.Constant(EditKind.Dword)), (1, Gen.Constant(EditKind.Zero16)))
            select new Edit(offset, head, value, kind);
        var gen =
            from seed in Gen.Choose(0, seeds - 1)
            from count in Gen.Choose(1, 24)
            from edits in edit.ArrayOf(count)
            from missing in withMissingPages ? Gen.Frequency((2, Gen.Constant(0u)), (1, Gen.Choose(0, int.MaxValue).Select(v => (uint)v))) : Gen.Constant(0u)
            select new Mutant(seed, edits, missing);
        return Arb.From(gen, Shrink);
    }

    private static IEnumerable<Mutant> Shrink(Mutant m)
    {
        if (m.MissingPages != 0) yield return m with { MissingPages = 0 };
        if (m.Edits.Length > 1)
        {
            yield return m with { Edits = m.Edits[..(m.Edits.Length / 2)] };
            yield return m with { Edits = m.Edits[(m.Edits.Length / 2)..] };
            for (var i = 0; i < m.Edits.Length; i++) yield return m with { Edits = [.. m.Edits[..i], .. m.Edits[(i + 1)..]] };
        }
        for (var i = 0; i < m.Edits.Length; i++)
            if (m.Edits[i].Kind != EditKind.Byte)
                yield return m with { Edits = [.. m.Edits[..i], m.Edits[i] with { Kind = EditKind.Byte }, .. m.Edits[(i + 1)..]] };
    }
}

/// <summary>
/// Runs a property over mutants: briefly in CI (the count given), at length when tests/fuzz/run.sh sets
/// DRIVERAUDIT_FUZZ_ITERATIONS. The shrunk failing input is written to DRIVERAUDIT_FUZZ_FAILURES (when set) so it
/// can be committed under tests/fixtures/fuzz/ as a regression fixture.
/// </summary>
public static class FuzzRun
{
    public static int Iterations(int ci) =>
        int.TryParse(Environment.GetEnvironmentVariable("DRIVERAUDIT_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : ci;

    /// <param name="input">The mutant's bytes and the name its failure file starts with (e.g. "iat-haluser.sys").</param>
    public static void Check(int ciIterations, Arbitrary<Mutant> mutants, Func<Mutant, (string Name, byte[] Bytes)> input, Action<Mutant, byte[]> property)
    {
        (string Name, byte[] Bytes)? lastFailure = null;
        var (runs, worstTicks, worstAllocated, worstName, largest) = (0, 0L, 0L, "", 0);
        var prop = Prop.ForAll(mutants, m =>
        {
            var made = input(m);
            try
            {
                var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                property(m, made.Bytes);
                var ticks = System.Diagnostics.Stopwatch.GetTimestamp() - started;
                var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
                runs++;
                largest = Math.Max(largest, made.Bytes.Length);
                if (ticks > worstTicks) (worstTicks, worstName) = (ticks, made.Name);
                worstAllocated = Math.Max(worstAllocated, allocated);
            }
            catch
            {
                lastFailure = made; // shrinking ends on the smallest failing mutant: the last one kept is it
                throw;
            }
        });
        try
        {
            FsCheck.Check.One(Config.QuickThrowOnFailure.WithMaxTest(Iterations(ciIterations)).WithQuietOnSuccess(true), prop);
        }
        finally
        {
            // tests/fuzz/run.sh: the worst time and allocation of one input, for the notes.
            if (Environment.GetEnvironmentVariable("DRIVERAUDIT_FUZZ_REPORT") is { Length: > 0 } report)
                File.AppendAllText(report, $"{input(new Mutant(0, [], 0)).Name.Split('-')[0]}: {runs} inputs (largest {largest:N0} bytes), worst {worstTicks * 1000.0 / System.Diagnostics.Stopwatch.Frequency:F0} ms ({worstName}), worst allocation {worstAllocated / (1 << 20):N0} MiB, failure: {(lastFailure is null ? "none" : "yes")}\n");
            if (lastFailure is { } f && Environment.GetEnvironmentVariable("DRIVERAUDIT_FUZZ_FAILURES") is { Length: > 0 } dir)
            {
                Directory.CreateDirectory(dir);
                File.WriteAllBytes(Path.Combine(dir, $"{f.Name}-{Convert.ToHexStringLower(SHA256.HashData(f.Bytes))[..16]}.bin"), f.Bytes);
            }
        }
    }
}
