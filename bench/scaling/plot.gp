# bench/scaling/plot.gp — bench/scaling's plots from points.tsv (run.sh calls it):
#   gnuplot -e "tsv='bench/scaling/points.tsv'; outdir='bench/scaling'" bench/scaling/plot.gp
# points.tsv columns: 1 image, 2 series (size|count), 3 x (MB of content | files), 4 content
# bytes, 5 files, 6 tool, 7 wall s, 8 cpu s, 9 rss KiB, 10 daemon cpu s, 11 daemon rss KiB, ...
# 12 dirty peak KiB, 13 writeback peak KiB, 14 disk write MB, 15 disk read MB, 16 compressed
# bytes, 17 load, 18 sys s. Series "inline" (100k files of 2000 B, inlined) is drawn as separate
# marks on the file-count plots. Rows are sorted by series, tool, x: a tool's points are a line.
set terminal pngcairo size 1200,500 font "sans,10"
set datafile separator "\t"
set key top left
set grid
set style data linespoints
tools = "floor floor-sync umoci unpack seal agent-pull tar-sealed tar-union tar-plain"
label(t) = t eq "floor" ? "igzip -dc | tar -x (floor)" : t eq "floor-sync" ? "the same, then sync" : \
  t eq "umoci" ? "umoci raw unpack" : \
  t eq "unpack" ? "sealroot unpack" : t eq "seal" ? "sealroot unpack --seal" : \
  t eq "agent-pull" ? "agent PullImage" : t eq "tar-sealed" ? "cold tar, sealed mount" : \
  t eq "tar-union" ? "cold tar, a container's union" : "cold tar, plain tree"
# what a step cost in CPU: the reader + the FUSE daemon; the agent's own for a pull
cpu(t) = t eq "agent-pull" ? column(10) : column(8) + (strcol(10) eq "-" ? 0 : column(10))
# peak RSS of the process a row is about (MiB): the agent for a pull, the FUSE daemon for a sealed tar
rss(t) = (t eq "agent-pull" || t eq "tar-sealed" || t eq "tar-union") ? column(11) / 1024. : column(9) / 1024.
is(s, t) = strcol(2) eq s && strcol(6) eq t

set output outdir."/time-vs-size.png"
set multiplot layout 1,2 title "cost vs content size (one gzip layer of real /usr files)"
set xlabel "content (MB)"
set ylabel "wall time (s)"
plot for [i=1:words(tools)] tsv using (is("size", word(tools, i)) ? $3 : NaN):7 title label(word(tools, i)) lc i pt i
set ylabel "CPU time, user+sys (s)"
plot for [i=1:words(tools)] tsv using (is("size", word(tools, i)) ? $3 : NaN):(cpu(word(tools, i))) title label(word(tools, i)) lc i pt i
unset multiplot

set output outdir."/time-vs-files.png"
set multiplot layout 1,2 title "cost vs file count (the same bytes cut into N files; filled marks: files of 2000 bytes, inlined)"
# linear axes: a cost linear in the file count is a straight line
set xrange [0:105000]
set xlabel "files"
set ylabel "wall time (s)"
plot for [i=1:words(tools)] tsv using (is("count", word(tools, i)) ? $3 : NaN):7 title label(word(tools, i)) lc i pt i, \
  for [i=1:words(tools)] tsv using (is("inline", word(tools, i)) ? $3 : NaN):7 notitle with points lc i pt 7 ps 1.5
set ylabel "CPU time, user+sys (s)"
plot for [i=1:words(tools)] tsv using (is("count", word(tools, i)) ? $3 : NaN):(cpu(word(tools, i))) title label(word(tools, i)) lc i pt i, \
  for [i=1:words(tools)] tsv using (is("inline", word(tools, i)) ? $3 : NaN):(cpu(word(tools, i))) notitle with points lc i pt 7 ps 1.5
unset multiplot
set xrange [*:*]

set terminal pngcairo size 800,500 font "sans,10"
rtools = "agent-pull seal tar-sealed tar-union unpack"
rlabel(t) = t eq "agent-pull" ? "enclave-agent (pull)" : t eq "seal" ? "sealroot unpack --seal" : \
  t eq "tar-sealed" ? "sealroot mount daemon (cold tar)" : \
  t eq "tar-union" ? "sealroot mount daemon, union (cold tar)" : "sealroot unpack"
set ylabel "peak RSS (MiB)"
set yrange [0:*]
set key bottom right
set output outdir."/rss-vs-size.png"
set title "peak RSS vs content size"
set xlabel "content (MB)"
plot for [i=1:words(rtools)] tsv using (is("size", word(rtools, i)) ? $3 : NaN):(rss(word(rtools, i))) title rlabel(word(rtools, i)) lc i pt i
set output outdir."/rss-vs-files.png"
set title "peak RSS vs file count (filled marks: files of 2000 bytes, inlined)"
set xrange [0:105000]
set xlabel "files"
set key top left
plot for [i=1:words(rtools)] tsv using (is("count", word(rtools, i)) ? $3 : NaN):(rss(word(rtools, i))) title rlabel(word(rtools, i)) lc i pt i, \
  for [i=1:words(rtools)] tsv using (is("inline", word(rtools, i)) ? $3 : NaN):(rss(word(rtools, i))) notitle with points lc i pt 7 ps 1.5
