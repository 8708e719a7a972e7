// The top bar's menu button: on narrow screens the navigation folds into a panel that
// this button opens (Escape or a click elsewhere closes it). Without this script the
// navigation simply wraps.
const topbar = document.querySelector(".topbar");
const button = document.getElementById("menu-button");
const nav = document.getElementById("main-nav");

if (topbar && button && nav) {
  const open = (yes) => {
    topbar.dataset.menu = yes ? "open" : "closed";
    button.setAttribute("aria-expanded", String(yes));
  };
  open(false);
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    open(topbar.dataset.menu !== "open");
  });
  document.addEventListener("click", (event) => {
    if (topbar.dataset.menu === "open" && !nav.contains(event.target)) open(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && topbar.dataset.menu === "open") {
      open(false);
      button.focus();
    }
  });
}
