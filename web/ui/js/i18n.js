// i18n: zh-CN by default, English on request; the choice is kept in
// localStorage. Category names come from the server (/api/v1/categories).

const dict = {
  zh: {
    app: "天眼", home: "首页", wall: "监控墙", map: "地图", admin: "管理", logout: "退出",
    username: "用户名", password: "密码", login: "登录", loginFailed: "用户名或密码错误",
    loginThrottled: "尝试次数过多，请稍后再试", sessionExpired: "登录已过期，请重新登录",
    search: "搜索点位名称、编号、地址或拼音首字母", byRegion: "按区域", favourites: "收藏",
    recent: "最近观看", noFavourites: "还没有收藏的点位", noRecent: "还没有观看记录",
    categories: "分类", points: "个点位", all: "全部", online: "在线", offline: "离线", unknown: "未知",
    stale: "状态待确认", agent_offline: "边缘代理离线",
    loading: "加载中…", empty: "没有符合条件的点位", back: "返回", allInRegion: "该区域全部点位",
    unassigned: "未分配区域", error: "出错了", retry: "重试",
    connecting: "连接中…", live: "直播中", reconnecting: "重新连接中…",
    camOffline: "摄像机离线或未启动，稍后自动重试", denied: "无权查看此点位",
    agentOffline: "摄像机所在的边缘代理暂时失联，稍后自动重试",
    codec: "此浏览器不支持该摄像机的视频编码", netError: "网络错误，稍后自动重试",
    fullscreen: "全屏", mainStream: "主码流", subStream: "子码流", snapshot: "截图",
    favourite: "收藏", unfavourite: "取消收藏", ptz: "云台", ptzUnavailable: "云台控制暂不可用",
    panoramic: "高空全景", hd: "高清", level: "级别", address: "地址", region: "区域", category: "分类",
    status: "状态", layout: "布局", saveLayout: "保存布局", deleteLayout: "删除", layoutName: "布局名称",
    savedLayouts: "已保存的布局", saved: "已保存", tour: "轮巡", startTour: "开始轮巡", stopTour: "停止轮巡",
    tourSource: "轮巡内容", tourSelection: "选中的点位", interval: "间隔(秒)", tree: "目录", searchTab: "搜索",
    dropHere: "拖入点位", clearTile: "清空画面", putInTile: "放入选中画面", play: "播放",
    keysHelp: "数字键选画面 · 方向键移动 · F 全屏 · Esc 返回 · Del 清空",
    mapPoints: "个点位已上图", noLocation: "个点位无坐标", noTiles: "未配置底图，显示经纬网格",
    select: "选择", more: "更多",
    selection: "选中", addToTour: "加入轮巡", tourEmpty: "轮巡列表为空", lang: "EN",
    ptzBusy: "云台正被更高优先级的用户控制", ptzAgentOffline: "边缘代理离线，暂不能控制云台", ptzDeviceOffline: "国标设备离线或未应答，暂不能控制云台",
    ptzDenied: "无云台控制权限", ptzFailed: "云台控制失败", zoomIn: "放大", zoomOut: "缩小",
  },
  en: {
    app: "Tianyan", home: "Home", wall: "Video wall", map: "Map", admin: "Admin", logout: "Log out",
    username: "Username", password: "Password", login: "Log in", loginFailed: "Wrong username or password",
    loginThrottled: "Too many attempts; try again later", sessionExpired: "Session expired; log in again",
    search: "Search name, ID, address or pinyin initials", byRegion: "By region", favourites: "Favourites",
    recent: "Recently viewed", noFavourites: "No favourites yet", noRecent: "Nothing viewed yet",
    categories: "Categories", points: "points", all: "All", online: "Online", offline: "Offline", unknown: "Unknown",
    stale: "Status stale", agent_offline: "Edge agent offline",
    loading: "Loading…", empty: "No matching points", back: "Back", allInRegion: "All points in this region",
    unassigned: "No region", error: "Something went wrong", retry: "Retry",
    connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
    camOffline: "Camera offline or not started; retrying", denied: "You may not view this point",
    agentOffline: "The camera's edge agent is out of touch; retrying",
    codec: "This browser cannot play the camera's video codec", netError: "Network error; retrying",
    fullscreen: "Fullscreen", mainStream: "Main stream", subStream: "Sub stream", snapshot: "Snapshot",
    favourite: "Favourite", unfavourite: "Unfavourite", ptz: "PTZ", ptzUnavailable: "PTZ control not available",
    panoramic: "Panoramic", hd: "HD", level: "Level", address: "Address", region: "Region", category: "Category",
    status: "Status", layout: "Layout", saveLayout: "Save layout", deleteLayout: "Delete", layoutName: "Layout name",
    savedLayouts: "Saved layouts", saved: "Saved", tour: "Tour", startTour: "Start tour", stopTour: "Stop tour",
    tourSource: "Tour through", tourSelection: "Selected points", interval: "Every (s)", tree: "Tree", searchTab: "Search",
    dropHere: "Drop a point here", clearTile: "Clear tile", putInTile: "Put in selected tile", play: "Play",
    keysHelp: "Digits select · arrows move · F fullscreen · Esc back · Del clear",
    mapPoints: "points on the map", noLocation: "without coordinates", noTiles: "No basemap configured; showing a coordinate grid",
    select: "Select", more: "More",
    selection: "Selected", addToTour: "Add to tour", tourEmpty: "The tour list is empty", lang: "中文",
    ptzBusy: "PTZ is held by a user of higher priority", ptzAgentOffline: "The edge agent is offline; PTZ unavailable", ptzDeviceOffline: "The GB/T 28181 device is offline or not answering; PTZ unavailable",
    ptzDenied: "You may not steer this camera", ptzFailed: "PTZ command failed", zoomIn: "Zoom in", zoomOut: "Zoom out",
  },
};

/** extend adds texts (a view's own keys) to both languages. */
export function extend(zh, en) {
  Object.assign(dict.zh, zh);
  Object.assign(dict.en, en);
}

let lang = localStorage.getItem("ty.lang") === "en" ? "en" : "zh";
let categoryNames = {};

/** t returns the text for key in the current language. */
export function t(key) {
  return dict[lang][key] ?? dict.zh[key] ?? key;
}

/** getLang is "zh" or "en". */
export function getLang() {
  return lang;
}

/** setLang switches the language and remembers it. */
export function setLang(l) {
  lang = l === "en" ? "en" : "zh";
  localStorage.setItem("ty.lang", lang);
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
}

/** setCategories takes /api/v1/categories items. */
export function setCategories(items) {
  categoryNames = {};
  for (const c of items) categoryNames[c.code] = c;
}

/** categoryName names a category code in the current language. */
export function categoryName(code) {
  const c = categoryNames[code];
  if (!c) return code || "";
  return lang === "en" ? c.en : c.zh;
}

/** categoryCodes lists known category codes in display order. */
export function categoryCodes() {
  return Object.keys(categoryNames);
}

document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
