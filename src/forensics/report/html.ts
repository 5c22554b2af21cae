/**
 * A self-contained HTML report: one swim lane per node/service on a shared time axis, the
 * nodes' silence windows shaded, findings as marks (error bursts, failed calls, quorum events,
 * verdicts), wheel/drag/button zoom, and a click on a mark showing its log lines. No external
 * resource of any kind: the data is embedded as JSON and drawn with inline SVG + script.
 */
import type { Investigation } from '../logs/investigate.ts';
import { renderJson } from './text.ts';

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Offset (minutes) of the report's zone at the bundle's start, for axis labels. */
function offsetOf(inv: Investigation): number {
  const m = /([+-])(\d{2}):(\d{2})\)?$/.exec(inv.tz);
  if (!m) return 0;
  return (Number(m[2]) * 60 + Number(m[3])) * (m[1] === '-' ? -1 : 1);
}

const CSS = `
body{font:13px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
header{padding:12px 18px;background:#1d2330;color:#fff}header h1{font-size:16px;margin:0 0 4px}
header .sub{opacity:.8}
.verdict{margin:12px 18px;padding:10px 14px;border-left:5px solid #c62828;background:#fff3f3}
.verdict.warn{border-color:#ef8f00;background:#fff8ec}.verdict.none{border-color:#8a93a6;background:#f3f4f7}
.verdict.nojudge{border-color:#ef8f00;background:#fff8ec}
#unread{margin:12px 18px;padding:8px 14px;border:1px dashed #c5cad3;background:#fff}#unread h2{font-size:13px;margin:0 0 4px}#unread ul{margin:0;padding-left:18px}
#filters{margin:6px 18px;display:flex;gap:10px;align-items:center;flex-wrap:wrap;color:#5a6272}#filters input[type=text]{font:inherit;width:190px}
table.findings{margin:8px 18px 20px;border-collapse:collapse;font-size:12px;width:calc(100% - 36px)}table.findings td,table.findings th{border:1px solid #e3e6eb;padding:2px 6px;text-align:left;vertical-align:top}
table.findings tr.error td:first-child{border-left:4px solid #c62828}table.findings tr.warn td:first-child{border-left:4px solid #ef8f00}
table.findings td.ev{font:11px ui-monospace,Menlo,Consolas,monospace;color:#3b4252;word-break:break-all}table.findings tr{cursor:pointer}
.verdict h2{font-size:14px;margin:0 0 6px}.verdict ul{margin:0;padding-left:18px}
#toolbar{margin:6px 18px;display:flex;gap:6px;align-items:center}
#toolbar button{font:inherit;padding:2px 10px;cursor:pointer}
#chart{margin:0 18px;background:#fff;border:1px solid #d6dae1;overflow:hidden;cursor:grab;user-select:none}
svg text{font:11px system-ui,sans-serif}
.lane-label{font-weight:600}.axis line{stroke:#e3e6eb}.axis text{fill:#5a6272}
rect.silence{fill:#9aa3b5;opacity:.28}rect.verdict-band{fill:#c62828;opacity:.15}
.mark{cursor:pointer;stroke:#fff;stroke-width:1}.mark:hover{stroke:#000;stroke-width:2}
.mark.sel{stroke:#000;stroke-width:2.5}.cluster-count{font-size:9px;fill:#fff;pointer-events:none;font-weight:700}
#legend{margin:6px 18px;color:#5a6272}#legend span{margin-right:14px}
#details{margin:12px 18px 30px;background:#fff;border:1px solid #d6dae1;padding:10px 14px;min-height:40px}
#details h3{margin:0 0 6px;font-size:14px}#details .meta{color:#5a6272;margin-bottom:6px;white-space:pre-wrap}
#details pre.line{margin:2px 0;padding:3px 6px;background:#f4f6f9;font:12px ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
#details pre.line .loc{color:#6b7385}
table.files{margin:0 18px 30px;border-collapse:collapse;font-size:12px}table.files td,table.files th{border:1px solid #e3e6eb;padding:2px 6px;text-align:left}
`;

const SCRIPT = `
(function(){
const D=JSON.parse(document.getElementById('zkw-data').textContent);
const OFF=D.__offsetMin*60000;
const KIND={verdict:['#c62828','tri'],'failed-calls':['#d32f2f','circle'],'error-burst':['#e53935','circle'],
'service-session-expired':['#8e24aa','circle'],'quorum-member-dropped':['#1565c0','diamond'],'quorum-election':['#0d47a1','diamond'],
'quorum-state':['#42a5f5','diamond'],'quorum-sync':['#64b5f6','diamond'],'zk-session-expired':['#5e35b1','diamond'],
'zk-zxid-mismatch':['#90a4ae','diamond'],'zk-follower-lost-leader':['#1976d2','diamond'],'periodic-gap':['#ef6c00','square'],
'last-sign-of-life':['#212121','bar'],silence:['#607d8b','bar'],'data-audit':['#5d4037','square'],
handover:['#00897b','star'],restored:['#2e7d32','star'],'process-start':['#455a64','square'],'zk-session-ended':['#6a1b9a','diamond'],
'topology-conflict':['#ff6f00','square'],cluster:['#37474f','cluster']};
const LABELS={verdict:'verdict',['failed-calls']:'failed calls','error-burst':'error burst','service-session-expired':'service session expired',
'quorum-member-dropped':'ZooKeeper dropped a member','quorum-election':'ZooKeeper election','quorum-state':'ZooKeeper state change','quorum-sync':'ZooKeeper sync',
'zk-session-expired':'ZooKeeper expired sessions','zk-zxid-mismatch':'zxid mismatch','zk-follower-lost-leader':'follower lost its leader','periodic-gap':'periodic job gap',
'last-sign-of-life':'last sign of life',silence:'silence (shaded)','data-audit':'ZooKeeper data audit',handover:'leadership handover',restored:'service restored',
'process-start':'process (re)started','zk-session-ended':'ZooKeeper closed a session','topology-conflict':'topology conflict',cluster:'several marks (click to list, zoom to see)'};
const SHAPE={circle:'●',diamond:'◆',tri:'▲',square:'■',bar:'▮',star:'★',cluster:'⬤'};
(function legend(){const lg=document.getElementById('legend');for(const k in KIND){const sp=document.createElement('span');sp.setAttribute('data-kind',k);sp.style.color=KIND[k][0];sp.textContent=SHAPE[KIND[k][1]]+' '+(LABELS[k]||k);lg.appendChild(sp);}})();
const LABEL=190,ROW=34,TOP=34;
const allLanes=[{id:'__verdicts',node:'',service:'verdicts',buckets:[]}].concat(D.lanes);
let lanes=allLanes.slice();let laneIndex=new Map(lanes.map((l,i)=>[l.id,i]));
const hidden=new Set();let since=-Infinity,until=Infinity;
function laneOf(f){if(f.kind==='verdict')return 0;
 if(f.node&&f.service&&laneIndex.has(f.node+'/'+f.service))return laneIndex.get(f.node+'/'+f.service);
 if(f.node){for(let i=1;i<lanes.length;i++)if(lanes[i].node===f.node)return i;}return 0;}
const all=D.verdicts.concat(D.findings).filter(f=>f.from!=null);
const marksAll=all.filter(f=>f.kind!=='silence'&&!(f.kind==='quorum-state'&&f.severity==='info'));
let marks=marksAll.slice();
function visible(f){return !(f.node&&hidden.has(f.node))&&f.to>=since&&f.from<=until;}
function applyFilters(){lanes=allLanes.filter((l,i)=>i===0||!hidden.has(l.node));laneIndex=new Map(lanes.map((l,i)=>[l.id,i]));
 marks=marksAll.filter(visible);selected=-1;
 if(since>-Infinity||until<Infinity){const a=since>-Infinity?since:full[0],b=until<Infinity?until:full[1];if(b>a)view=[a,b];}
 for(const tr of document.querySelectorAll('table.findings tr[data-idx]')){const f=tableRows[+tr.getAttribute('data-idx')];tr.style.display=visible(f)?'':'none';}
 draw();}
function parseT(s){s=s.trim();if(!s)return null;const m=/^(\\d{4})-(\\d{2})-(\\d{2})[ T](\\d{2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d+))?)?$/.exec(s);if(!m)return NaN;
 return Date.UTC(+m[1],+m[2]-1,+m[3],+m[4],+m[5],+(m[6]||0),m[7]?Math.round(+('0.'+m[7])*1000):0)-OFF;}
let t0=D.start,t1=D.end;if(!(t1>t0)){t0=(t0||0)-60000;t1=(t0||0)+120000;}
const pad=(t1-t0)*0.03||1000;const full=[t0-pad,t1+pad];let view=full.slice();
const chart=document.getElementById('chart');
function W(){return Math.max(400,chart.clientWidth);}
function x(t){return LABEL+(t-view[0])/(view[1]-view[0])*(W()-LABEL-10);}
function tOf(px){return view[0]+(px-LABEL)/(W()-LABEL-10)*(view[1]-view[0]);}
function p2(n){return String(n).padStart(2,'0');}
function fmt(t,ms){const d=new Date(t+OFF);let s=d.getUTCFullYear()+'-'+p2(d.getUTCMonth()+1)+'-'+p2(d.getUTCDate())+' '+p2(d.getUTCHours())+':'+p2(d.getUTCMinutes())+':'+p2(d.getUTCSeconds());
 if(ms){s+='.'+String(Math.round(((t+OFF)%1000+1000)%1000*1000)).padStart(6,'0');}return s;}
function tickStep(span,n){const c=[1,2,5,10,20,50,100,200,500,1e3,2e3,5e3,1e4,15e3,3e4,6e4,12e4,3e5,6e5,9e5,18e5,36e5,72e5,144e5,216e5,432e5,864e5,1728e5,6048e5];
 for(const s of c)if(span/s<=n)return s;return c[c.length-1];}
const NS='http://www.w3.org/2000/svg';
function el(tag,attrs,parent,text){const e=document.createElementNS(NS,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=text;if(parent)parent.appendChild(e);return e;}
let selected=-1;
function draw(){
 const w=W(),h=TOP+lanes.length*ROW+10;chart.innerHTML='';
 const svg=el('svg',{width:w,height:h,id:'timeline'},chart);
 const ax=el('g',{class:'axis'},svg);const span=view[1]-view[0];const step=tickStep(span,Math.max(3,Math.floor((w-LABEL)/130)));
 for(let t=Math.ceil((view[0]+OFF)/step)*step-OFF;t<=view[1];t+=step){const px=x(t);el('line',{x1:px,x2:px,y1:TOP-4,y2:h},ax);
  const s=fmt(t,false);el('text',{x:px+2,y:14},ax,step>=864e5?s.slice(0,10):step>=6e4?s.slice(5,16):s.slice(11,19)+(step<1e3?'.'+String(Math.round((t+OFF)%1000)).padStart(3,'0'):''));}
 el('text',{x:4,y:14,fill:'#5a6272'},svg,D.tz);
 lanes.forEach((l,i)=>{const y=TOP+i*ROW;const g=el('g',{class:'lane','data-lane':l.id},svg);
  el('rect',{x:0,y:y,width:w,height:ROW,fill:i%2?'#fbfcfd':'#f3f5f8'},g);
  el('text',{class:'lane-label',x:6,y:y+ROW/2+4},g,i===0?'verdicts':l.node+' · '+l.service);
  if(l.buckets&&l.buckets.length){let max=1;for(const b of l.buckets)if(b[1]>max)max=b[1];
   const bms=l.bucketMs||60000;const bw=Math.max(1,bms/(view[1]-view[0])*(w-LABEL-10));
   for(const b of l.buckets){if(b[0]+bms<view[0]||b[0]>view[1])continue;const px=x(b[0]);if(px<LABEL)continue;
    const hh=Math.max(1,Math.log(1+b[1])/Math.log(1+max)*(ROW-10));el('rect',{x:px,y:y+ROW-4-hh,width:bw,height:hh,fill:'#b8c2d3'},g);
    if(b[2]>0){const eh=Math.max(1,Math.log(1+b[2])/Math.log(1+max)*(ROW-10));el('rect',{x:px,y:y+ROW-4-eh,width:bw,height:eh,fill:'#ef9a9a'},g);}}}
 });
 // silence windows: shade every lane of the node
 for(const f of all){if(f.kind!=='silence')continue;for(let i=1;i<lanes.length;i++){if(lanes[i].node!==f.node)continue;
  const a=Math.max(LABEL,x(f.from)),b=Math.min(w,x(f.to));if(b<=a)continue;
  el('rect',{class:'silence','data-node':f.node,x:a,y:TOP+i*ROW+2,width:b-a,height:ROW-4},svg).appendChild(el('title',{},null,f.title));}}
 for(const v of D.verdicts){const a=Math.max(LABEL,x(v.from)),b=Math.min(w,x(v.to));if(b>a)el('rect',{class:'verdict-band',x:a,y:TOP+2,width:b-a,height:ROW-4},svg);}
 el('line',{x1:LABEL,x2:LABEL,y1:TOP,y2:h,stroke:'#c5cad3'},svg);
 // Marks closer than CL px on one lane collapse into one cluster mark with a count.
 // Chained: a mark within CL px of the group's last one joins it, so groups never overlap.
 const CL=12;const pts=[];
 marks.forEach((f,idx)=>{const i=laneOf(f);if(i===undefined)return;const px=x(f.from);if(px<LABEL-6||px>w+6)return;pts.push({i:i,px:px,idx:idx});});
 pts.sort((a,b)=>a.i-b.i||a.px-b.px);const groups=[];
 for(const p of pts){const g=groups[groups.length-1];if(g&&g.i===p.i&&p.px-g.last<=CL){g.items.push(p.idx);g.last=p.px;}else groups.push({i:p.i,px:p.px,last:p.px,items:[p.idx]});}
 for(const g of groups){const idx=g.items[0];const f=marks[idx];const cluster=g.items.length>1;const k=cluster?KIND.cluster:(KIND[f.kind]||['#777','circle']);
  const px=g.px,cy=TOP+g.i*ROW+ROW/2;const attrs={class:'mark'+(cluster?' cluster':'')+(g.items.includes(selected)?' sel':''),'data-kind':cluster?'cluster':f.kind,'data-idx':idx,fill:k[0]};let m;
  if(!cluster&&f.to>f.from){const px2=Math.min(w,x(f.to));if(px2-px>3)el('line',{x1:px,x2:px2,y1:cy,y2:cy,stroke:k[0],'stroke-width':3,opacity:.5},svg);}
  if(k[1]==='circle')m=el('circle',Object.assign(attrs,{cx:px,cy:cy,r:6}),svg);
  else if(k[1]==='cluster'){attrs['data-count']=g.items.length;attrs['data-kinds']=g.items.map(j=>marks[j].kind).join(',');m=el('circle',Object.assign(attrs,{cx:px,cy:cy,r:8}),svg);}
  else if(k[1]==='diamond')m=el('path',Object.assign(attrs,{d:'M'+px+' '+(cy-7)+'l7 7l-7 7l-7 -7z'}),svg);
  else if(k[1]==='tri')m=el('path',Object.assign(attrs,{d:'M'+px+' '+(cy-8)+'l8 14h-16z'}),svg);
  else if(k[1]==='star')m=el('path',Object.assign(attrs,{d:'M'+px+' '+(cy-9)+'l2.6 6h6.4l-5.2 3.8 2 6.2-5.8-3.8-5.8 3.8 2-6.2-5.2-3.8h6.4z'}),svg);
  else if(k[1]==='square')m=el('rect',Object.assign(attrs,{x:px-5,y:cy-5,width:10,height:10}),svg);
  else m=el('rect',Object.assign(attrs,{x:px-2,y:cy-10,width:4,height:20}),svg);
  if(cluster)el('text',{class:'cluster-count',x:px,y:cy+3,'text-anchor':'middle'},svg,String(g.items.length));
  el('title',{},m,cluster?g.items.length+' marks: '+g.items.map(j=>marks[j].title).slice(0,6).join(' | '):fmt(f.from,true)+'  '+f.title);
  m.addEventListener('click',ev=>{ev.stopPropagation();if(cluster)showCluster(g.items);else show(idx);});}
 document.getElementById('range').textContent=fmt(view[0],false)+' – '+fmt(view[1],false);
}
function showCluster(items){const d=document.getElementById('details');d.innerHTML='';const h=document.createElement('h3');h.textContent=items.length+' marks close together';d.appendChild(h);
 for(const j of items){const a=document.createElement('div');a.className='meta';a.style.cursor='pointer';a.textContent=fmt(marks[j].from,true)+'  '+marks[j].title;a.onclick=()=>show(j);d.appendChild(a);}
 const a=Math.min(...items.map(j=>marks[j].from)),b=Math.max(...items.map(j=>marks[j].to));if(b>a){const p=(b-a)*0.2+1;view=[a-p,b+p];draw();}}
function show(idx){selected=idx;const f=marks[idx];showFinding(f);draw();}
function showFinding(f){const d=document.getElementById('details');d.innerHTML='';
 const h=document.createElement('h3');h.textContent=f.title;d.appendChild(h);
 const m=document.createElement('div');m.className='meta';m.textContent=fmt(f.from,true)+(f.to>f.from?' – '+fmt(f.to,true):'')+'  ['+f.kind+']'+(f.detail?'\\n'+f.detail:'');d.appendChild(m);
 for(const e of f.evidence){const p=document.createElement('pre');p.className='line';const loc=document.createElement('span');loc.className='loc';
  loc.textContent=e.file+':'+e.line+'  ';p.appendChild(loc);p.appendChild(document.createTextNode(e.text+(e.more?'\\n'+e.more.join('\\n'):'')));d.appendChild(p);}}
function zoom(f,center){const c=center==null?(view[0]+view[1])/2:center;const s=Math.max(5,(view[1]-view[0])*f);view=[c-(c-view[0])*f,c-(c-view[0])*f+s];draw();}
document.getElementById('zin').onclick=()=>zoom(0.5);document.getElementById('zout').onclick=()=>zoom(2);
document.getElementById('zreset').onclick=()=>{view=full.slice();draw();};
chart.addEventListener('wheel',ev=>{ev.preventDefault();const r=chart.getBoundingClientRect();zoom(ev.deltaY<0?0.8:1.25,tOf(ev.clientX-r.left));},{passive:false});
let drag=null;chart.addEventListener('mousedown',ev=>{drag={x:ev.clientX,v:view.slice()};chart.style.cursor='grabbing';});
window.addEventListener('mouseup',()=>{drag=null;chart.style.cursor='grab';});
window.addEventListener('mousemove',ev=>{if(!drag)return;const dt=(ev.clientX-drag.x)/(W()-LABEL-10)*(drag.v[1]-drag.v[0]);view=[drag.v[0]-dt,drag.v[1]-dt];draw();});
window.addEventListener('resize',draw);
window.zkwZoomTo=(a,b)=>{view=[a,b];draw();};
// Filters: --since/--until as text, nodes as checkboxes.
const tableRows=D.verdicts.concat(D.findings);
for(const tr of document.querySelectorAll('table.findings tr[data-idx]'))tr.addEventListener('click',()=>{const f=tableRows[+tr.getAttribute('data-idx')];showFinding(f);
 const j=marks.indexOf(f);if(j>=0){selected=j;}const p=Math.max(60000,(f.to-f.from)*0.5);view=[f.from-p,f.to+p];draw();});
const nf=document.getElementById('nodefilter');for(const n of D.nodes.concat(D.sharedNodes)){const l=document.createElement('label');const c=document.createElement('input');c.type='checkbox';c.checked=true;c.value=n;c.setAttribute('data-node',n);
 c.onchange=()=>{if(c.checked)hidden.delete(n);else hidden.add(n);applyFilters();};l.appendChild(c);l.appendChild(document.createTextNode(' '+n));nf.appendChild(l);}
document.getElementById('fapply').onclick=()=>{const a=parseT(document.getElementById('since').value),b=parseT(document.getElementById('until').value);
 const bad=[a,b].some(v=>v!==null&&Number.isNaN(v));document.getElementById('ferr').textContent=bad?'expected YYYY-MM-DD HH:MM[:SS[.fff]] in '+D.tz:'';if(bad)return;
 since=a===null?-Infinity:a;until=b===null?Infinity:b;applyFilters();};
document.getElementById('fclear').onclick=()=>{document.getElementById('since').value='';document.getElementById('until').value='';since=-Infinity;until=Infinity;view=full.slice();applyFilters();};
draw();
})();
`;

export function renderHtml(inv: Investigation): string {
  const data = JSON.parse(renderJson(inv)) as Record<string, unknown>;
  data.__offsetMin = offsetOf(inv);
  const json = JSON.stringify(data)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  // No verdict is never shown as good news: neutral grey, or amber when nothing could be judged.
  const verdicts = inv.nothingToJudge
    ? `<div class="verdict nojudge" id="verdict-box"><h2>No verdict — ${esc(inv.nothingToJudge)}</h2></div>`
    : inv.verdicts.length
      ? inv.verdicts
          .map(
            (v) =>
              `<div class="verdict ${v.severity === 'error' ? '' : 'warn'}"><h2>${esc(v.title)}</h2>${
                v.detail
                  ? `<ul>${v.detail
                      .split('\n')
                      .map((l) => `<li>${esc(l)}</li>`)
                      .join('')}</ul>`
                  : ''
              }</div>`,
          )
          .join('\n')
      : `<div class="verdict none" id="verdict-box"><h2>No leader failure pattern found in what was read</h2><div>${inv.findings.length} findings below; this is no proof of health — see what was not read.</div></div>`;
  const unread: string[] = [];
  if (inv.nothingToJudge) unread.push(`<li><b>Why no verdict:</b> ${esc(inv.nothingToJudge)}</li>`);
  for (const f of inv.skipped) unread.push(`<li>${esc(f.rel)} — <b>${esc(f.reason)}</b>: ${esc(f.detail)}</li>`);
  for (const f of inv.files) if (f.note && !f.note.startsWith('ZooKeeper data')) unread.push(`<li>${esc(f.file)} — ${esc(f.note)}</li>`);
  if (inv.data.status !== 'audited') unread.push(`<li>ZooKeeper data: ${esc(inv.data.status)} — ${esc(inv.data.note)}</li>`);
  for (const c of inv.conflicts) unread.push(`<li>topology conflict: ${esc(c)}</li>`);
  const unreadBox = `<div id="unread"><h2>What was not read / why no verdict</h2>${unread.length ? `<ul>${unread.join('')}</ul>` : '<div>every file was read; nothing was skipped</div>'}</div>`;
  const rows = [...inv.verdicts, ...inv.findings].map((f, i) => ({ f, i })).filter(({ f }) => !(f.kind === 'quorum-state' && f.severity === 'info'));
  const fmtT = (t: number): string => (Number.isFinite(t) ? new Date(t + offsetOf(inv) * 60_000).toISOString().replace('T', ' ').replace('Z', '') : '');
  const table = `<table class="findings" id="findings"><tr><th>time (${esc(inv.tz)})</th><th>node</th><th>finding</th><th>evidence</th></tr>${rows
    .map(({ f, i }) => {
      const ev = f.evidence[0];
      return `<tr class="${f.severity}" data-idx="${i}" data-kind="${esc(f.kind)}" data-node="${esc(f.node ?? '')}"><td>${esc(fmtT(f.from))}</td><td>${esc(f.node ?? '')}</td><td>${esc(f.title)}</td><td class="ev">${ev ? esc(`${ev.file}:${ev.line}  ${ev.text}`.slice(0, 300)) : ''}</td></tr>`;
    })
    .join('')}</table>`;
  const files = inv.files
    .map(
      (f) =>
        `<tr><td>${esc(f.file)}</td><td>${esc(f.node)}</td><td>${esc(f.service)}</td><td>${esc(f.kind)}${f.gzip ? ' (gz)' : ''}</td><td>${f.lines}</td><td>${f.unknown}</td><td>${esc(f.note ?? f.yearSource ?? '')}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>zkwarden investigate — ${esc(inv.bundle)}</title><style>${CSS}</style></head>
<body>
<header><h1>zkwarden investigate — ${esc(inv.bundle)}</h1><div class="sub">nodes ${esc(inv.nodes.join(', '))} · ${inv.lanes.length} lanes · ${inv.findings.length} findings · time zone ${esc(inv.tz)}</div></header>
${verdicts}
${unreadBox}
<div id="toolbar"><button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">−</button><button id="zreset">reset</button><span id="range"></span><span style="color:#5a6272">— wheel to zoom, drag to pan, click a mark for its log lines</span></div>
<div id="chart"></div>
<div id="filters"><span>since <input type="text" id="since" placeholder="YYYY-MM-DD HH:MM:SS"></span><span>until <input type="text" id="until" placeholder="YYYY-MM-DD HH:MM:SS"></span><button id="fapply">apply</button><button id="fclear">clear</button><span id="ferr" style="color:#c62828"></span><span id="nodefilter">nodes:</span></div>
<div id="legend"></div>
<div id="details"><span style="color:#5a6272">Click a mark or a row to see its log lines.</span></div>
${table}
<div id="data" style="margin:0 18px 10px"><b>ZooKeeper data:</b> ${esc(inv.data.status)} — ${esc(inv.data.note)}${inv.data.dataDirs.length ? ` (${esc(inv.data.dataDirs.map((d) => `${d.node}: ${d.rel}`).join(', '))})` : ''}</div>
<table class="files"><tr><th>file</th><th>node</th><th>service</th><th>format</th><th>lines</th><th>unrecognised</th><th>note</th></tr>${files}</table>
<script type="application/json" id="zkw-data">${json}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
