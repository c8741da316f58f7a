using System.Buffers.Binary;
using DriverAudit.TestSupport.Dumps;

// Usage: DumpBench <fixtures/bin/x64> <out dir> <big dump GiB>
// Writes small.dmp (an x64 complete dump holding a few modules, every page stored) and big.dmp: the same
// pages, but the run table also declares two huge runs of physical memory around them that the file holds
// as holes (a sparse file). Both dumps list the same modules, so a scan of either reads the same pages.
if (args.Length != 3) { Console.Error.WriteLine("usage: DumpBench <fixtures/bin/x64> <out dir> <big dump GiB>"); return 2; }
var fixtures = args[0];
var outDir = args[1];
var gib = long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
Directory.CreateDirectory(outDir);

// The same dump the README test writes as MEMORY.DMP (tests/DriverAudit.TestSupport/Dumps/SmallFixtureDump.cs).
var small = SmallFixtureDump.Write(fixtures, out var w);
File.WriteAllBytes(Path.Combine(outDir, "small.dmp"), small);

// big.dmp: runs = [hole run A] + the original runs + [hole run B]; pages are stored in run order.
const int HeaderSize = 0x2000, PageSize = 0x1000;
var header = small.AsSpan(0, HeaderSize).ToArray();
var runCount = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(0x88));
var runs = new List<(ulong Base, ulong Count)>();
for (var i = 0; i < runCount; i++)
    runs.Add((BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0x98 + 16 * i)), BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0xA0 + 16 * i))));
var holePages = (ulong)(gib << 30) / PageSize / 2;
var storedPages = (ulong)(small.Length - HeaderSize) / PageSize;
runs.Insert(0, (0x100_0000, holePages));
runs.Add((0x100_0000 + holePages, holePages));
BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(0x88), (uint)runs.Count);
var total = 0UL;
for (var i = 0; i < runs.Count; i++)
{
    BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0x98 + 16 * i), runs[i].Base);
    BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0xA0 + 16 * i), runs[i].Count);
    total += runs[i].Count;
}
BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0x90), total);
BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0xFA0), HeaderSize + total * PageSize);
using (var big = new FileStream(Path.Combine(outDir, "big.dmp"), FileMode.Create, FileAccess.Write))
{
    big.Write(header);
    big.Position = HeaderSize + (long)holePages * PageSize; // a hole: never written, no disk blocks
    big.Write(small.AsSpan(HeaderSize));
    big.SetLength(HeaderSize + (long)total * PageSize);
}
Console.WriteLine($"small.dmp {small.Length} bytes; big.dmp {HeaderSize + (long)total * PageSize} bytes ({runs.Count} runs, {storedPages} module/list pages stored, {total} pages declared); {w.Modules.Count} modules");
return 0;
